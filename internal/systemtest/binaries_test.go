package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/testsupport/clerkfake"
	"github.com/clerksync/clerksync/internal/testsupport/openapitest"
	"github.com/clerksync/clerksync/internal/testsupport/testenv"
)

// binaries is clerksync as it is deployed: the worker and starter binaries
// as processes, against the package's dev server, a database of the test's
// own and the fake Clerk.
type binaries struct {
	*system    // url is the starter's; db, clerk, secret and taskQueue are set
	bin        string
	env        []string // what every start of the processes gets
	logs       string   // directory of the processes' logs
	workerURL  string
	worker     *testenv.Process
	starter    *testenv.Process
	started    int      // starts so far, to name each start's logs
	starterEnv []string // the running starter's environment
}

// startBinaries builds and runs the worker and the starter with the test
// environment plus extra (later settings win), and waits until both are
// ready.
func startBinaries(t *testing.T, taskQueue string, extra ...string) *binaries {
	t.Helper()
	dbURL := testenv.Database(t)
	fake := clerkfake.Start(t)
	b := &binaries{bin: testenv.Build(t), logs: t.TempDir()}
	b.env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + dbURL, "TEMPORAL_ADDRESS=" + testenv.TemporalAddress(t), "TEMPORAL_TASK_QUEUE=" + taskQueue,
		"CLERK_WEBHOOK_SECRET=" + testSecret, "CLERK_SECRET_KEY=" + clerkfake.SecretKey, "CLERK_API_URL=" + fake.URL(),
	}, extra...)
	db, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	b.system = &system{clerk: fake, db: db, secret: testSecret, taskQueue: taskQueue}
	b.start(t)
	return b
}

// start runs both processes on fresh ports with b.env plus extra.
func (b *binaries) start(t *testing.T, extra ...string) {
	t.Helper()
	starterAddr, workerAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := append(append(b.env, extra...), "HTTP_ADDR="+starterAddr, "WORKER_HTTP_ADDR="+workerAddr)
	b.started++
	suffix := ""
	if b.started > 1 {
		suffix = fmt.Sprintf("-%d", b.started)
	}
	b.worker = testenv.StartProcess(t, b.logs, "worker"+suffix, env, filepath.Join(b.bin, "worker"))
	b.starter = testenv.StartProcess(t, b.logs, "starter"+suffix, env, filepath.Join(b.bin, "starter"), "serve")
	b.url, b.workerURL, b.starterEnv = openapitest.Proxy(t, "http://"+starterAddr), "http://"+workerAddr, env
	for _, u := range []string{b.workerURL, b.url} {
		require.Eventually(t, func() bool { return status(t, u+"/readyz") == http.StatusOK },
			time.Minute, 100*time.Millisecond, "%s never became ready", u)
	}
}

// stop stops both processes and fails the test unless both exit cleanly.
func (b *binaries) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, b.starter.Stop(), "the starter did not stop cleanly")
	require.NoError(t, b.worker.Stop(), "the worker did not stop cleanly")
}

// starterCommand runs `starter args...` with the running starter's
// environment and returns its output and error.
func (b *binaries) starterCommand(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(b.bin, "starter"), args...)
	cmd.Env = b.starterEnv
	return cmd.CombinedOutput()
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
