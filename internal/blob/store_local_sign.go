package blob

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"time"
)

// localPathPrefix is where Handler expects to be mounted; signed URLs point there.
const localPathPrefix = "/blob/"

var (
	errSignature = errors.New("signature invalid")
	errExpired   = errors.New("url expired")
)

// grant is what one signed URL allows. Uploads bind content type and size as well,
// so the handler can refuse any other body; downloads bind only method, key and
// expiry.
type grant struct {
	method      string // "PUT" or "GET"
	key         string
	contentType string // PUT only
	size        int64  // PUT only
	exp         int64  // Unix seconds; the URL is refused from this second on
}

// mac is the HMAC-SHA256 of the grant. Fields are newline-separated; none can
// contain a newline (keys and content types are checked first), so two different
// grants never produce the same input.
func (l *Local) mac(g grant) []byte {
	m := hmac.New(sha256.New, l.secret)
	m.Write([]byte("handoff-blob-v1\n" + g.method + "\n" + g.key + "\n" + g.contentType + "\n" +
		strconv.FormatInt(g.size, 10) + "\n" + strconv.FormatInt(g.exp, 10)))
	return m.Sum(nil)
}

func (l *Local) signedURL(g grant) string {
	q := url.Values{}
	q.Set("exp", strconv.FormatInt(g.exp, 10))
	if g.method == "PUT" {
		q.Set("ct", g.contentType)
		q.Set("size", strconv.FormatInt(g.size, 10))
	}
	q.Set("sig", base64.RawURLEncoding.EncodeToString(l.mac(g)))
	return l.baseURL + localPathPrefix + g.key + "?" + q.Encode()
}

// verify rebuilds the grant a request claims from its query and checks the
// signature before the expiry, so an expiry is only reported for a URL the server
// really signed. The comparison is constant-time.
func (l *Local) verify(method, key string, q url.Values) (grant, error) {
	g := grant{method: method, key: key}
	var err error
	if g.exp, err = strconv.ParseInt(q.Get("exp"), 10, 64); err != nil {
		return grant{}, errSignature
	}
	if method == "PUT" {
		g.contentType = q.Get("ct")
		if g.size, err = strconv.ParseInt(q.Get("size"), 10, 64); err != nil {
			return grant{}, errSignature
		}
	}
	// Strict: otherwise the unused low bits of the last character make several
	// spellings of one signature valid.
	sig, err := base64.RawURLEncoding.Strict().DecodeString(q.Get("sig"))
	if err != nil || !hmac.Equal(sig, l.mac(g)) {
		return grant{}, errSignature
	}
	if !l.now().Before(time.Unix(g.exp, 0)) {
		return grant{}, errExpired
	}
	return g, nil
}
