package capture

import (
	_ "embed"
	"net/http"
)

// openAPI describes every endpoint of this package; it is kept beside the
// handlers so a change to one is reviewed with the other
// (TestOpenAPIDocumentsRoutes checks every route api.go registers is in it).
//
//go:embed openapi.yaml
var openAPI []byte

// serveOpenAPI serves the OpenAPI 3 document.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPI)
}
