package alex

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// Error is ALEX refusing a request. Its text is safe to log: it holds only
// the status and the FHIR issue code. ALEX's diagnostics stay in their own
// field for the GP's screen, never in the text, because a FHIR server may
// quote the patient id or NHI it refused.
type Error struct {
	Status      int    // HTTP status
	Code        string // FHIR issue type (business-rule, forbidden, …); "login" for a rejected token
	Diagnostics string // ALEX's text (issue diagnostics or details.text), truncated
	Retryable   bool   // 408, 429 and 5xx: the same request may succeed later
}

func (e *Error) Error() string {
	s := fmt.Sprintf("ALEX answered %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	return s
}

// retryableStatus reports whether a status is worth another try: the
// server is busy or broken, not refusing this request.
func retryableStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// operationOutcome is the part of a FHIR OperationOutcome we read.
type operationOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics"`
		Details     struct {
			Text string `json:"text"`
		} `json:"details"`
	} `json:"issue"`
}

// gatewayError is the non-FHIR body ALEX's gateway sends for a bad token:
// {"statusCode":401,"message":"Unauthorized. Access token is missing or invalid."}
type gatewayError struct {
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

// responseError turns a non-2xx response into an *Error. Bodies that are
// neither an OperationOutcome nor the gateway's JSON are not quoted: we
// cannot know what they contain.
func responseError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, Retryable: retryableStatus(resp.StatusCode)}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var oo operationOutcome
	if json.Unmarshal(body, &oo) == nil && oo.ResourceType == "OperationOutcome" {
		e.Code, e.Diagnostics = summarizeIssues(oo)
		return e
	}
	var ge gatewayError
	if json.Unmarshal(body, &ge) == nil && ge.Message != "" {
		e.Diagnostics = truncate(ge.Message)
		if resp.StatusCode == http.StatusUnauthorized {
			e.Code = "login"
		}
	}
	return e
}

// summarizeIssues picks the code of the first error-level issue and joins
// the texts of all error-level issues (all issues if none is an error).
func summarizeIssues(oo operationOutcome) (code, diagnostics string) {
	var texts []string
	for pass := 0; pass < 2 && len(texts) == 0; pass++ {
		for _, is := range oo.Issue {
			if pass == 0 && is.Severity != "error" && is.Severity != "fatal" {
				continue
			}
			if code == "" {
				code = is.Code
			}
			text := is.Diagnostics
			if text == "" {
				text = is.Details.Text
			}
			if text != "" {
				texts = append(texts, text)
			}
		}
	}
	return code, truncate(strings.Join(texts, "; "))
}

func truncate(s string) string {
	if len(s) <= maxDiagnostics {
		return s
	}
	cut := maxDiagnostics
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ErrAccessToken is matched (errors.Is) by failures to get an ALEX access
// token from the identity provider: a deployment problem (credentials,
// scope, provider down) rather than a problem with the image.
var ErrAccessToken = errors.New("alex: cannot get access token")

// tokenError is a failure to get an access token from the identity
// provider. Its text is what the provider said, never our credentials.
type tokenError struct{ err error }

func (e *tokenError) Error() string {
	var re *oauth2.RetrieveError
	if errors.As(e.err, &re) && re.Response != nil {
		s := "alex: cannot get access token: token endpoint answered " + re.Response.Status
		if re.ErrorCode != "" {
			s += ": " + re.ErrorCode
		}
		if re.ErrorDescription != "" {
			s += " " + truncate(re.ErrorDescription)
		}
		return s
	}
	return "alex: cannot get access token: " + e.err.Error()
}

func (e *tokenError) Unwrap() error { return e.err }

func (e *tokenError) Is(target error) bool { return target == ErrAccessToken }

// retryable: the provider was unreachable, slow or failing (5xx, 429);
// a 4xx (bad client id, secret or scope) will not fix itself.
func (e *tokenError) retryable() bool {
	var re *oauth2.RetrieveError
	if errors.As(e.err, &re) && re.Response != nil {
		return retryableStatus(re.Response.StatusCode)
	}
	return true
}
