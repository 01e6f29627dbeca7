package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stickycalls/stickycalls/httpapi/apitest"
)

// selfSigned writes a certificate for 127.0.0.1 named cn and its key, and
// returns the certificate's pool.
func selfSigned(t *testing.T, certFile, keyFile, cn string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool
}

// With a certificate and key the service serves HTTPS itself, HTTP/2
// included, and takes a renewed certificate on SIGHUP without a restart.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := selfSigned(t, certFile, keyFile, "first")
	s := startServer(t, map[string]string{"STICKYCALLS_TLS_CERT_FILE": certFile, "STICKYCALLS_TLS_KEY_FILE": keyFile})
	base := strings.Replace(s.base, "http://", "https://", 1)
	get := func(pool *x509.CertPool) (*http.Response, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	resp, err := get(pool)
	if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.TLS.PeerCertificates[0].Subject.CommonName != "first" {
		t.Fatalf("GET /healthz over TLS = %v, %v; want 200 over HTTP/2 with the first certificate", resp, err)
	}
	if code, _, _ := s.doTLS(base, pool); code != 200 {
		t.Errorf("GET /v1/usage over TLS = %d, want 200", code)
	}

	renewed := selfSigned(t, certFile, keyFile, "renewed")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := get(renewed)
		if err == nil && resp.TLS.PeerCertificates[0].Subject.CommonName == "renewed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP: %v, %v; want the renewed certificate", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.out.String(), "TLS certificate reloaded") {
		t.Error("no log line says the certificate was reloaded")
	}
}

// doTLS reads /v1/usage with the server's key over TLS.
func (s *server) doTLS(base string, pool *x509.CertPool) (int, http.Header, error) {
	req, _ := http.NewRequest("GET", base+"/v1/usage", nil)
	req.Header.Set("Authorization", "Bearer "+s.key)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	apitest.Check(s.t, req, resp, raw)
	return resp.StatusCode, resp.Header, nil
}
