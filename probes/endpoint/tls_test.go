package endpoint

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/dsctl/dsctl/probes/errs"
)

// writeCA makes a CA and a server certificate for 127.0.0.1, writes the CA to a file
// and returns the server's TLS config (miniredis speaks TLS, so the whole path is real).
func writeCA(t *testing.T, dir string) (caFile string, server *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dsctl test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}}
}

func TestRedisOverTLSWithConfiguredCA(t *testing.T) {
	dir := t.TempDir()
	caFile, serverTLS := writeCA(t, dir)
	m := miniredis.NewMiniRedis()
	if err := m.StartTLS(serverTLS); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	d := Dialer{Timeout: 2 * time.Second}

	clients, err := d.ConnectRedis(ctx, Redis{Addrs: []string{m.Addr()}, TLS: &TLS{CA: caFile}})
	if err != nil {
		t.Fatalf("TLS with the right CA: %v", err)
	}
	clients[0].Close()
	// rediss:// URL turns TLS on; with the CA from the context it verifies too.
	if clients, err = d.ConnectRedis(ctx, Redis{Addrs: []string{"rediss://" + m.Addr()}, TLS: &TLS{CA: caFile}}); err != nil {
		t.Fatalf("rediss:// with the CA: %v", err)
	}
	clients[0].Close()

	// Without the CA the server is not trusted: an error, never a silent plaintext fallback.
	_, err = d.ConnectRedis(ctx, Redis{Addrs: []string{m.Addr()}, TLS: &TLS{Enabled: true}})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server accepted or unclear error: %v", err)
	}
}

func TestBuildTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for name, tc := range map[string]*TLS{
		"missing CA":       {CA: filepath.Join(dir, "nope.pem")},
		"CA without PEM":   {CA: notPEM},
		"cert without key": {Cert: notPEM},
		"bad pair":         {Cert: notPEM, Key: notPEM},
	} {
		if _, err := buildTLS(tc, "kafka"); errs.KindOf(err) != errs.KindUsage {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}
