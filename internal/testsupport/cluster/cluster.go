// Package cluster runs a production-shaped Temporal for tests: the pinned
// temporal-server (make temporal-server builds it) on fresh PostgreSQL
// databases with SQL visibility, 4 history shards, mutual TLS on the
// frontend with a CA and certificates the test makes, and each service
// (frontend, history, matching, worker) a process of its own, so a test
// can restart one.
package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// ServerVersion is the pinned temporal-server (1.29.1, which the CLI
// embeds, has CVE-2025-14986).
const ServerVersion = "v1.29.7"

// HistoryShards is the cluster's persistence.numHistoryShards.
const HistoryShards = 4

// Services are the server's services, each run as its own process.
var Services = []string{"history", "matching", "frontend", "worker"}

// Cluster is a running cluster.
type Cluster struct {
	// Address is the frontend's host:port, reachable over mutual TLS only.
	Address string
	// CA, ClientCert and ClientKey are the files a client connects with.
	CA, ClientCert, ClientKey string

	t     testing.TB
	bin   string
	root  string
	logs  string
	procs map[string]*testenv.Process
}

// binaries returns the directory holding temporal-server's server and sql
// binaries: TEMPORAL_SERVER_DIR, or make temporal-server's cache.
func binaries(t testing.TB) string {
	dir := os.Getenv("TEMPORAL_SERVER_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "clerksync", "temporal-server-"+ServerVersion)
	}
	for _, b := range []string{"server", "sql"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			msg := fmt.Sprintf("temporal-server %s is not built in %s (make temporal-server builds it): %v", ServerVersion, dir, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

// Start runs a cluster for the test, stopped at cleanup.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: binaries(t), root: t.TempDir(), logs: t.TempDir(), procs: map[string]*testenv.Process{}}
	certs := filepath.Join(c.root, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := makeCerts(certs); err != nil {
		t.Fatal(err)
	}
	c.CA, c.ClientCert, c.ClientKey = filepath.Join(certs, "ca.pem"), filepath.Join(certs, "client.pem"), filepath.Join(certs, "client.key")

	main, visibility := c.database(testenv.Database(t), "temporal"), c.database(testenv.Database(t), "visibility")
	// Membership ports are stored as smallint, so every port is taken
	// below the kernel's ephemeral range.
	// Each port once: two services given the same one fail the cluster's
	// start (seen: the frontend's HTTP port taken by another service).
	taken := map[int]bool{}
	port := func() int {
		for {
			n := 20000 + int(randInt(12000))
			if taken[n] {
				continue
			}
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", n))
			if err == nil {
				ln.Close()
				taken[n] = true
				return n
			}
		}
	}
	cfg := configData{Main: main, Visibility: visibility, Root: c.root, Certs: certs, Ports: map[string]int{}, Shards: HistoryShards}
	for _, name := range []string{"frontend", "frontendHTTP", "frontendMembership", "history", "historyMembership",
		"matching", "matchingMembership", "worker", "workerMembership"} {
		cfg.Ports[name] = port()
	}
	if err := os.MkdirAll(filepath.Join(c.root, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(c.root, "config", "production.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := configTemplate.Execute(f, cfg); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(c.root, "config", "dynamicconfig.yaml"), []byte(dynamicConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Address = fmt.Sprintf("127.0.0.1:%d", cfg.Ports["frontend"])
	// History starts alone and the others once it listens: on an empty
	// database every service writes the cluster's metadata at start-up,
	// and one that loses that race exits ("failed to initialize current
	// cluster metadata"), as the worker service once did here.
	for i, s := range Services {
		c.start(s)
		if i == 0 {
			c.waitListening(s, fmt.Sprintf("127.0.0.1:%d", cfg.Ports[s]))
		}
	}
	c.registerNamespace()
	return c
}

// database sets the Temporal schema (temporal or visibility) up in the
// empty database at dbURL and returns its name and user.
func (c *Cluster) database(dbURL, schema string) dbInfo {
	u, err := url.Parse(dbURL)
	if err != nil {
		c.t.Fatal(err)
	}
	d := dbInfo{Name: strings.TrimPrefix(u.Path, "/"), Host: u.Hostname(), Port: u.Port(), User: u.User.Username()}
	if d.Port == "" {
		d.Port = "5432"
	}
	if d.User == "" {
		d.User = os.Getenv("USER")
		if d.User == "" {
			d.User = "root"
		}
	}
	base := []string{"--plugin", "postgres12", "--ep", d.Host, "-p", d.Port, "-u", d.User, "--db", d.Name}
	for _, args := range [][]string{{"setup-schema", "-v", "0.0"}, {"update-schema", "--schema-name", "postgresql/v12/" + schema}} {
		out, err := exec.Command(filepath.Join(c.bin, "sql"), append(base, args...)...).CombinedOutput()
		if err != nil {
			c.t.Fatalf("temporal-sql-tool %s on %s: %v\n%s", args[0], d.Name, err, out)
		}
	}
	return d
}

// start runs one service's process.
func (c *Cluster) start(service string) {
	c.procs[service] = testenv.StartProcess(c.t, c.logs, "temporal-"+service, os.Environ(), filepath.Join(c.bin, "server"),
		"--root", c.root, "--config", "config", "--env", "production", "--allow-no-auth", "start", "--service", service)
}

// waitListening waits until service accepts connections at addr.
func (c *Cluster) waitListening(service, addr string) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("temporal %s never listened on %s: %v", service, addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Restart stops a service's process (SIGTERM, as a rolling deploy does)
// and starts it again.
func (c *Cluster) Restart(service string) {
	c.t.Helper()
	if err := c.procs[service].Stop(); err != nil {
		c.t.Logf("temporal %s stopped: %v", service, err)
	}
	c.start(service)
}

// PIDs are the services' process IDs, by service, for reading their CPU
// time.
func (c *Cluster) PIDs() map[string]int {
	pids := map[string]int{}
	for s, p := range c.procs {
		pids[s] = p.PID()
	}
	return pids
}

// TLS is the client's TLS configuration.
func (c *Cluster) TLS() *tls.Config {
	c.t.Helper()
	cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		c.t.Fatal(err)
	}
	ca, err := os.ReadFile(c.CA)
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Env is what a worker or a starter needs to reach the cluster: Temporal's
// standard client environment (envconfig).
func (c *Cluster) Env() []string {
	return []string{"TEMPORAL_ADDRESS=" + c.Address, "TEMPORAL_NAMESPACE=default",
		"TEMPORAL_TLS_CLIENT_CERT_PATH=" + c.ClientCert, "TEMPORAL_TLS_CLIENT_KEY_PATH=" + c.ClientKey,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH=" + c.CA, "TEMPORAL_TLS_SERVER_NAME=127.0.0.1"}
}

// Client dials the cluster's default namespace over mutual TLS, closed at
// cleanup, compressing as clerksync's binaries do by default (make bench's
// raw baseline sends through it).
func (c *Cluster) Client() client.Client {
	c.t.Helper()
	compression, err := config.GRPCCompression(config.DefaultTemporalGRPCCompression)
	if err != nil {
		c.t.Fatalf("%v", err)
	}
	tc, err := client.Dial(client.Options{HostPort: c.Address, Namespace: "default",
		ConnectionOptions: client.ConnectionOptions{TLS: c.TLS(), GrpcCompression: compression}})
	if err != nil {
		c.t.Fatalf("dial the cluster: %v", err)
	}
	c.t.Cleanup(tc.Close)
	return tc
}

// registerNamespace creates the default namespace once the frontend
// answers (the services take some seconds to find each other).
func (c *Cluster) registerNamespace() {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		nc, err := client.NewNamespaceClient(client.Options{HostPort: c.Address, ConnectionOptions: client.ConnectionOptions{TLS: c.TLS()}})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
				Namespace: "default", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
			cancel()
			nc.Close()
			if err == nil || strings.Contains(err.Error(), "already") {
				return
			}
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	c.t.Fatalf("the cluster's frontend never took the namespace: %v", last)
}

type dbInfo struct{ Name, Host, Port, User string }

type configData struct {
	Main, Visibility dbInfo
	Root, Certs      string
	Ports            map[string]int
	Shards           int
}

var configTemplate = template.Must(template.New("config").Parse(`log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: {{.Shards}}
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: {{.Main.Name}}
        connectAddr: {{.Main.Host}}:{{.Main.Port}}
        connectProtocol: tcp
        user: {{.Main.User}}
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: {{.Visibility.Name}}
        connectAddr: {{.Visibility.Host}}:{{.Visibility.Port}}
        connectProtocol: tcp
        user: {{.Visibility.User}}
        maxConns: 4
        maxIdleConns: 4
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  tls:
    frontend:
      server:
        certFile: {{.Certs}}/server.pem
        keyFile: {{.Certs}}/server.key
        clientCaFiles: [{{.Certs}}/ca.pem]
        requireClientAuth: true
      client:
        serverName: 127.0.0.1
        rootCaFiles: [{{.Certs}}/ca.pem]
    systemWorker:
      certFile: {{.Certs}}/client.pem
      keyFile: {{.Certs}}/client.key
      client:
        serverName: 127.0.0.1
        rootCaFiles: [{{.Certs}}/ca.pem]
services:
  frontend:
    rpc: {grpcPort: {{index .Ports "frontend"}}, membershipPort: {{index .Ports "frontendMembership"}}, bindOnIP: 127.0.0.1, httpPort: {{index .Ports "frontendHTTP"}}}
  matching:
    rpc: {grpcPort: {{index .Ports "matching"}}, membershipPort: {{index .Ports "matchingMembership"}}, bindOnIP: 127.0.0.1}
  history:
    rpc: {grpcPort: {{index .Ports "history"}}, membershipPort: {{index .Ports "historyMembership"}}, bindOnIP: 127.0.0.1}
  worker:
    rpc: {grpcPort: {{index .Ports "worker"}}, membershipPort: {{index .Ports "workerMembership"}}, bindOnIP: 127.0.0.1}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: 127.0.0.1:{{index .Ports "frontend"}}
      httpAddress: 127.0.0.1:{{index .Ports "frontendHTTP"}}
dcRedirectionPolicy:
  policy: noop
archival:
  history: {state: disabled}
  visibility: {state: disabled}
namespaceDefaults:
  archival:
    history: {state: disabled}
    visibility: {state: disabled}
publicClient:
  hostPort: 127.0.0.1:{{index .Ports "frontend"}}
dynamicConfigClient:
  filepath: {{.Root}}/config/dynamicconfig.yaml
  pollInterval: 10s
`))

// dynamicConfig moves the queues' ack levels every second instead of 30:
// deleting a closed run waits for its visibility tasks to be acked, so
// with the defaults an erased run stays listed for minutes (as it does on
// a production server; see docs/operating.md#erasure-of-deleted-users).
const dynamicConfig = `history.transferProcessorUpdateAckInterval:
  - value: 1s
history.visibilityProcessorUpdateAckInterval:
  - value: 1s
`

// makeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, each with its key, into dir.
func makeCerts(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clerksync test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	for i, leaf := range []struct {
		name  string
		usage []x509.ExtKeyUsage
		ips   []net.IP
	}{
		{"server", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []net.IP{net.ParseIP("127.0.0.1")}},
		{"client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil},
	} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "clerksync " + leaf.name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), ExtKeyUsage: leaf.usage, IPAddresses: leaf.ips,
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, leaf.name+".pem"), "CERTIFICATE", der); err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, leaf.name+".key"), "PRIVATE KEY", keyDER); err != nil {
			return err
		}
	}
	return nil
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

// randInt is a random number below n.
func randInt(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		panic(err)
	}
	return v.Int64()
}
