package loadtest

import (
	"context"
	"net"
	"net/http"
	"time"
)

// phone is one GP's phone for one round: its own HTTP connections (from
// its own source address on a loopback target) and, once it has claimed
// the QR token, the session's mobile token.
type phone struct {
	hc     *http.Client
	base   string
	rec    *recorder
	mobile string
}

// newPhoneClient returns the HTTP client of one phone. The server limits
// QR claims per client address; real phones each have their own, so on an
// IPv4 loopback target each phone dials from its own 127.x.y.z (Linux
// routes all of 127/8 to loopback). src nil means the system's choice.
func newPhoneClient(src net.IP, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2},
	}
}

// phoneAddr is the loopback source address of phone number n (counted
// from 0 over the whole run). The octets skip 0 and 255, and the second
// octet starts at 10, clear of the 127.0.0.x addresses servers listen on.
// After ~13 million phones the addresses repeat, by which time the
// earliest have long refilled their rate-limit buckets.
func phoneAddr(n int) net.IP {
	const span = 254
	n %= span * span * 200
	return net.IPv4(127, byte(10+n/(span*span)), byte(1+n/span%span), byte(1+n%span))
}

func (p *phone) close() { p.hc.CloseIdleConnections() }

// claim exchanges the QR token for the mobile token, as scanning does.
func (p *phone) claim(ctx context.Context, qrToken string) error {
	var reply struct {
		MobileToken string `json:"mobileToken"`
	}
	err := timed(p.rec, StepClaim, func() error {
		return call(ctx, p.hc, "claim", http.MethodGet, p.base+"/api/medtech/session/tokens/"+qrToken, "", nil, http.StatusOK, &reply)
	})
	p.mobile = reply.MobileToken
	return err
}

// sendImage presigns, uploads and registers one photo and returns when
// the register request was sent and its reply (201) arrived.
func (p *phone) sendImage(ctx context.Context, imageID string, data []byte) (span, error) {
	var up upload
	err := timed(p.rec, StepPresign, func() error {
		body := map[string]any{"imageId": imageID, "contentType": "image/jpeg", "size": len(data)}
		return call(ctx, p.hc, "presign", http.MethodPost, p.base+"/api/medtech/session/presigned-url", p.mobile, body, http.StatusOK, &up)
	})
	if err != nil {
		return span{}, err
	}
	if err := timed(p.rec, StepUpload, func() error { return up.put(ctx, p.hc, data) }); err != nil {
		return span{}, err
	}
	sent := time.Now()
	err = timed(p.rec, StepRegister, func() error {
		body := map[string]any{
			"imageId":  imageID,
			"key":      up.Key,
			"metadata": map[string]any{"laterality": "left", "notes": "handoff loadtest"},
		}
		return call(ctx, p.hc, "register", http.MethodPost, p.base+"/api/medtech/session/images", p.mobile, body, http.StatusCreated, nil)
	})
	return span{sent: sent, replied: time.Now()}, err
}
