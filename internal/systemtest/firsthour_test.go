package systemtest

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/config"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// tryItLine is what one line of the README's "Try it" block must print.
type tryItLine struct {
	command string   // a part of the line that identifies it
	want    []string // what its output holds
	// eventually: the output shows the worker's work, which lands a moment
	// after the command before it returned; the line is run again until it
	// does.
	eventually bool
}

// tryIt is the README's "Try it" block, line by line, in order.
var tryIt = []tryItLine{
	{command: "export CLERK_WEBHOOK_SECRET="},
	{command: "export PAYLOAD_KEYS="},
	{command: "export CLERKSYNC_ENSURE_KEY="},
	{command: "send --id user_demo --email ada@example.com --first-name Ada", want: []string{"200 OK user_demo", `"status":"accepted"`}},
	{command: "--type user.updated", want: []string{"200 OK user_demo"}},
	{command: "psql", want: []string{"user_demo", "ada@example.com", "Grace", "(1 row)"}, eventually: true},
	{command: "status user_demo", want: []string{`"first_name": "Grace"`, `"sync_state": "synced"`, `"status": "trialing"`}, eventually: true},
	{command: "curl", want: []string{`"clerk_id":"user_eve"`}},
	{command: "--type user.deleted", want: []string{"200 OK user_demo"}},
	{command: "status user_demo", want: []string{`"deleted": true`, `"row": null`}, eventually: true},
}

// TestFirstHour_TryItRunsTwiceWithMakeResetBetween runs `make run` as a
// newcomer would (on ports and a database of its own), runs every line of
// the README's "Try it" block as written, checks what each prints, stops
// make run, runs `make reset` (answering its question), and does it all
// again: the second round prints what the first did.
func TestFirstHour_TryItRunsTwiceWithMakeResetBetween(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	lines := readmeBlock(t, filepath.Join(root, "README.md"), "## Try it")
	require.Len(t, lines, len(tryIt), "the README's Try it block changed: update tryIt to match it")

	db := "clerksync_firsthour_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))[:20]
	ports := map[string]string{}
	taken := map[int]bool{}
	for _, name := range []string{"TEMPORAL_PORT", "TEMPORAL_UI_PORT", "STARTER_PORT", "WORKER_PORT", "DEVCLERK_PORT"} {
		ports[name] = strconv.Itoa(fixedPort(t, taken))
	}
	makeArgs := []string{"RUN_DIR=" + t.TempDir(), "RUN_DATABASE=" + db}
	for name, port := range ports {
		makeArgs = append(makeArgs, name+"="+port)
	}
	adminURL := os.Getenv("TEST_DATABASE_URL")
	if adminURL == "" {
		adminURL = "postgres://127.0.0.1:5432/postgres"
	}
	t.Cleanup(func() {
		if conn, err := pgx.Connect(context.Background(), adminURL); err == nil {
			_, _ = conn.Exec(context.Background(), "drop database if exists "+db+" with (force)")
			conn.Close(context.Background())
		}
	})
	// The README's commands, moved to this test's ports and database.
	starter := "127.0.0.1:" + ports["STARTER_PORT"]
	relocate := strings.NewReplacer("127.0.0.1:8080", starter, "-h 127.0.0.1 clerksync ", "-h 127.0.0.1 "+db+" ")
	// What a second terminal has, plus what tells it about this test's
	// ports: everything else comes from the README's own lines.
	shellEnv := append(cleanEnv(), "HTTP_ADDR="+starter, "TEMPORAL_ADDRESS=127.0.0.1:"+ports["TEMPORAL_PORT"],
		"DATABASE_URL=postgres://127.0.0.1:5432/"+db, "CLERK_API_URL=http://127.0.0.1:"+ports["DEVCLERK_PORT"]+"/v1")

	for round := 1; round <= 2; round++ {
		run := startMakeRun(t, root, makeArgs, "http://"+starter, "http://127.0.0.1:"+ports["WORKER_PORT"])
		var exports []string
		for i, line := range lines {
			want := tryIt[i]
			require.Contains(t, line, want.command, "README line %d is not the one tryIt expects", i+1)
			line = relocate.Replace(line)
			if strings.HasPrefix(line, "export ") {
				exports = append(exports, line)
				continue
			}
			script := strings.Join(append(exports, line), "\n")
			var out string
			check := func() bool {
				out = shell(t, root, shellEnv, script)
				for _, w := range want.want {
					if !strings.Contains(out, w) {
						return false
					}
				}
				return true
			}
			if want.eventually {
				require.Eventually(t, check, time.Minute, 500*time.Millisecond,
					"round %d, README line %q: want %q in its output, last was:\n%s", round, line, want.want, &out)
			} else {
				require.True(t, check(), "round %d, README line %q: want %q in its output:\n%s", round, line, want.want, out)
			}
		}
		run.stop(t)
		reset := exec.Command("make", append([]string{"-s", "reset"}, makeArgs...)...)
		reset.Dir, reset.Env = root, cleanEnv()
		reset.Stdin = strings.NewReader("y\n")
		out, err := reset.CombinedOutput()
		require.NoError(t, err, "make reset: %s", out)
		require.Contains(t, string(out), "make reset: done")
	}
}

// fixedPort returns a free port below Linux's ephemeral range (32768 and
// up), as make run's defaults are: the dev server opens ports of its own in
// that range, which a port taken from there could collide with.
func fixedPort(t *testing.T, taken map[int]bool) int {
	t.Helper()
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if taken[p] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		taken[p] = true
		return p
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// makeRun is a running `make run`.
type makeRun struct {
	cmd    *exec.Cmd
	logs   *testenv.LogBuffer
	exited chan struct{} // closed once make has exited, with err set
	err    error
}

func startMakeRun(t *testing.T, root string, args []string, starterURL, workerURL string) *makeRun {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-s", "run"}, args...)...)
	cmd.Dir, cmd.Env = root, cleanEnv()
	logs := &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	r := &makeRun{cmd: cmd, logs: logs, exited: make(chan struct{})}
	go func() { r.err = cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-r.exited
		}
		if t.Failed() {
			t.Logf("make run's output:\n%s", logs)
		}
	})
	for _, u := range []string{starterURL, workerURL} {
		require.Eventually(t, func() bool {
			select {
			case <-r.exited:
				return true // judged below
			default:
				return status(t, u+"/readyz") == http.StatusOK
			}
		}, 3*time.Minute, 200*time.Millisecond, "make run never got %s ready:\n%s", u, logs)
		select {
		case <-r.exited:
			t.Fatalf("make run exited (%v):\n%s", r.err, logs)
		default:
		}
	}
	return r
}

// stop ends make run as a terminal's Ctrl-C would end its processes.
func (r *makeRun) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-r.exited:
	case <-time.After(time.Minute):
		t.Fatalf("make run did not stop:\n%s", r.logs)
	}
	logs := knownServerNoise.ReplaceAllString(r.logs.String(), "")
	require.NotContains(t, logs, "level=WARN", "make run warned on a clean start and stop")
	require.NotContains(t, logs, "level=ERROR")
}

// knownServerNoise are lines the Temporal dev server itself may log, none
// of clerksync's doing and harmless: while it stops, racing a poll it is
// cancelling (its metrics interceptor writes a trailer to a stream already
// closed); while it starts, a queue reader asking a shard the server has
// not finished acquiring (it retries, and the shard's tasks run).
var knownServerNoise = regexp.MustCompile(`(?m)^temporal \| .*level=ERROR msg="(unable to add metrics baggage to gRPC trailer|Queue reader unable to retrieve tasks" .*error="shard status unknown)".*$`)

// shell runs script with bash in dir, as a terminal would, and returns what
// it printed.
func shell(t *testing.T, dir string, env []string, script string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // judged by its output
	return out.String()
}

// cleanEnv is the test's environment without any of clerksync's settings,
// as a newcomer's shell has it.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		known := false
		for _, v := range config.Vars {
			if name == v.Name || (strings.HasSuffix(v.Name, "*") && strings.HasPrefix(name, strings.TrimSuffix(v.Name, "*"))) {
				known = true
			}
		}
		if !known {
			env = append(env, kv)
		}
	}
	return env
}

// readmeBlock returns the lines of the first ```sh block after heading.
func readmeBlock(t *testing.T, path, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), "\n"+heading+"\n")
	require.True(t, ok, "README has no %q", heading)
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(after)
	require.NotNil(t, m, "no sh block after %q", heading)
	return strings.Split(strings.TrimSpace(m[1]), "\n")
}

// repoRoot is the directory of go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	return filepath.Dir(strings.TrimSpace(string(out)))
}
