package service

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"
)

// certificate serves the TLS certificate and key of two files, read again
// on SIGHUP, so a renewed certificate (certbot, cert-manager) is taken up
// without a restart. A reload that fails keeps the certificate in use.
type certificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

// loadCertificate reads the pair once; an error names what is wrong.
func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certificate) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("STICKYCALLS_TLS_CERT_FILE, STICKYCALLS_TLS_KEY_FILE: %w", err)
	}
	c.current.Store(&pair)
	return nil
}

// config is the server's TLS configuration: TLS 1.2 and up with Go's
// modern defaults for ciphers and curves; HTTP/2 is negotiated by the
// server (ServeTLS adds it).
func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.current.Load(), nil
		},
	}
}

// reloadOnHangup reloads the pair on each SIGHUP until ctx is done.
func (c *certificate) reloadOnHangup(ctx context.Context, logger zerolog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := c.reload(); err != nil {
				logger.Error().Err(err).Msg("TLS certificate not reloaded: the previous one stays in use")
				continue
			}
			logger.Info().Msg("TLS certificate reloaded")
		}
	}
}
