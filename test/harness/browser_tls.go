//go:build e2e

package harness

import (
	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"
)

// IgnoreCertificateErrors makes this tab accept any TLS certificate (a test's self-signed one), through
// DevTools' Security.setIgnoreCertificateErrors. Call it before Open.
func (p *BrowserPage) IgnoreCertificateErrors() error {
	_, err := chromedp.Call(p.ctx, security.SetIgnoreCertificateErrors, security.SetIgnoreCertificateErrorsParams{Ignore: true})
	return err
}
