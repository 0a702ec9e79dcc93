package mqtttest

import (
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
	"time"
)

// pki is the set of certificates a broker's TLS listeners use, generated
// for each broker: nothing is checked in, nothing expires between runs.
type pki struct {
	caFile                      string
	serverCert, serverKey       string // valid for 127.0.0.1, ::1 and localhost
	expiredCert, expiredKey     string // right names, expired yesterday
	wrongNameCert, wrongNameKey string // valid, but only for wrong.example
	clientCert, clientKey       string // client certificate for mutual TLS
	roots                       *x509.CertPool
	clientPair                  tls.Certificate
	untrustedCert, untrustedKey string // a client certificate from another CA
	untrustedPair               tls.Certificate
	now                         time.Time
	serial                      int64
	caKey                       *ecdsa.PrivateKey
	caCert                      *x509.Certificate
	dir                         string
	untrustedCA                 *x509.Certificate
	untrustedCAKey              *ecdsa.PrivateKey
}

func newPKI(dir string) (*pki, error) {
	p := &pki{dir: dir, now: time.Now()}
	var err error
	p.caKey, p.caCert, err = p.newCA("zmqtt-go test CA")
	if err != nil {
		return nil, err
	}
	p.caFile = filepath.Join(dir, "ca.pem")
	if err := writePEM(p.caFile, "CERTIFICATE", p.caCert.Raw); err != nil {
		return nil, err
	}
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.caCert)

	localNames := []string{"localhost"}
	localIPs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	day := 24 * time.Hour
	if p.serverCert, p.serverKey, _, err = p.leaf("server", p.caCert, p.caKey, localNames, localIPs, p.now.Add(-time.Hour), p.now.Add(day), false); err != nil {
		return nil, err
	}
	if p.expiredCert, p.expiredKey, _, err = p.leaf("expired", p.caCert, p.caKey, localNames, localIPs, p.now.Add(-3*day), p.now.Add(-day), false); err != nil {
		return nil, err
	}
	if p.wrongNameCert, p.wrongNameKey, _, err = p.leaf("wrongname", p.caCert, p.caKey, []string{"wrong.example"}, nil, p.now.Add(-time.Hour), p.now.Add(day), false); err != nil {
		return nil, err
	}
	if p.clientCert, p.clientKey, p.clientPair, err = p.leaf("client", p.caCert, p.caKey, nil, nil, p.now.Add(-time.Hour), p.now.Add(day), true); err != nil {
		return nil, err
	}
	p.untrustedCAKey, p.untrustedCA, err = p.newCA("zmqtt-go untrusted CA")
	if err != nil {
		return nil, err
	}
	if p.untrustedCert, p.untrustedKey, p.untrustedPair, err = p.leaf("untrusted-client", p.untrustedCA, p.untrustedCAKey, nil, nil, p.now.Add(-time.Hour), p.now.Add(day), true); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) nextSerial() *big.Int {
	p.serial++
	return big.NewInt(p.serial)
}

func (p *pki) newCA(name string) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          p.nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             p.now.Add(-7 * 24 * time.Hour),
		NotAfter:              p.now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

// leaf issues a certificate and writes name.pem and name-key.pem.
func (p *pki) leaf(name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, dns []string, ips []net.IP, from, to time.Time, client bool) (certFile, keyFile string, pair tls.Certificate, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", pair, err
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: p.nextSerial(),
		Subject:      pkix.Name{CommonName: "zmqtt-go " + name},
		NotBefore:    from,
		NotAfter:     to,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", pair, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", pair, err
	}
	certFile = filepath.Join(p.dir, name+".pem")
	keyFile = filepath.Join(p.dir, name+"-key.pem")
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return "", "", pair, err
	}
	if err := writePEM(keyFile, "EC PRIVATE KEY", keyDER); err != nil {
		return "", "", pair, err
	}
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	return certFile, keyFile, pair, err
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
