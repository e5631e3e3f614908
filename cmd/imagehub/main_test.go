package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
)

// binary is the imagehub program built once for these tests: the black-box
// tests run it exactly as a user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imagehub-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "imagehub")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "error building imagehub:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// environ is a clean environment for the program: nothing from the test
// process leaks in except PATH and HOME.
func environ(vars map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	// Cheap password hashes, unless a test sets its own: the program's
	// default cost spends most of a sign-in's time in bcrypt.
	if _, ok := vars["PASSWORD_HASH_COST"]; !ok {
		env = append(env, "PASSWORD_HASH_COST=4")
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// runCmd runs one imagehub command to completion.
func runCmd(t testing.TB, vars map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCmdInput(t, vars, "", args...)
}

// runCmdInput runs one imagehub command with stdin as its standard input
// (a pipe, not a terminal, as in a script).
func runCmdInput(t testing.TB, vars map[string]string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = environ(vars)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

type server struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer // written by the goroutine that reads serve's output
	done chan error
}

// startServer runs `imagehub serve` on a free port and waits until it says
// where it listens.
func startServer(t testing.TB, vars map[string]string) *server {
	t.Helper()
	if _, ok := vars["PORT"]; !ok {
		vars["PORT"] = "0"
	}
	vars["LOG_FORMAT"] = "json"
	if _, ok := vars["DATA_DIR"]; !ok {
		vars["DATA_DIR"] = t.TempDir()
	}
	cmd := exec.Command(binary, "serve")
	cmd.Env = environ(vars)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	s := &server{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			s.logs.Write(append(line, '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if !sent && json.Unmarshal(line, &rec) == nil && rec.Msg == "imagehub is serving" {
				addr <- rec.Addr
				sent = true
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case a := <-addr:
		_, port, err := net.SplitHostPort(a)
		require.NoError(t, err)
		s.base = "http://127.0.0.1:" + port
	case err := <-s.done:
		t.Fatalf("imagehub serve exited early: %v\n%s", err, s.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("imagehub serve did not start in time\n%s", s.logs)
	}
	return s
}

func call(t testing.TB, method, url, token string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The real program's answers are held to the OpenAPI description too.
	res, err := openapitest.Client(t).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m, res.Header
}

// TestServeAsANewUser starts the real program against a fresh database and
// goes through the API the way a new user's script would.
func TestServeAsANewUser(t *testing.T) {
	t.Parallel()
	// A minute's delay after the free sign-in attempts, so that the throttle
	// check below cannot be outwaited by a slow machine.
	srv := startServer(t, map[string]string{"DATABASE_URL": dbtest.NewURL(t), "LOGIN_DELAY": "1m"})
	base := srv.base

	status, _, _ := call(t, "GET", base+"/healthz", "", nil)
	require.Equal(t, 200, status)
	status, ready, _ := call(t, "GET", base+"/readyz", "", nil)
	require.Equal(t, 200, status, "%v", ready)

	// The first visitor is an ordinary contributor; whoever reads serve's
	// output has the setup code that makes the admin.
	status, body, _ := call(t, "POST", base+"/api/v1/auth/signup", "", map[string]string{"email": "bob@example.com", "password": "a long password", "name": "Bob"})
	require.Equal(t, 201, status)
	require.Equal(t, "contributor", body["user"].(map[string]any)["role"], "the first visitor is not admin")
	bobID := body["user"].(map[string]any)["id"].(string)
	code := srv.setupCode(t)
	require.Contains(t, srv.logs.String(), "This hub has no admin yet", "the code is on stderr too")
	status, body, _ = call(t, "POST", base+"/api/v1/auth/signup", "", map[string]string{"email": "ada@example.com", "password": "a long password", "name": "Ada", "setup_code": "wrong"})
	require.Equal(t, 403, status, "%v", body)
	require.Equal(t, "setup_code", body["error"].(map[string]any)["field"])
	status, body, _ = call(t, "POST", base+"/api/v1/auth/signup", "", map[string]string{"email": "ada@example.com", "password": "a long password", "name": "Ada", "setup_code": code})
	require.Equal(t, 201, status, "%v", body)
	require.Equal(t, "admin", body["user"].(map[string]any)["role"])
	status, body, _ = call(t, "POST", base+"/api/v1/auth/signup", "", map[string]string{"email": "eve@example.com", "password": "a long password", "name": "Eve", "setup_code": code})
	require.Equal(t, 403, status, "the code works once: %v", body)

	// Tokens come from the CLI too, and carry their user's role.
	adminToken, errOut, err := runCmd(t, envOf(srv), "tokens", "create", "--email", "ada@example.com", "--name", "test script")
	require.NoError(t, err, errOut)
	adminToken = strings.TrimSpace(adminToken)
	bobToken, errOut, err := runCmd(t, envOf(srv), "tokens", "create", "--email", "bob@example.com", "--name", "bob script")
	require.NoError(t, err, errOut)
	bobToken = strings.TrimSpace(bobToken)

	status, _, _ = call(t, "PUT", base+"/api/v1/users/"+bobID+"/role", bobToken, map[string]string{"role": "admin"})
	require.Equal(t, 403, status, "a contributor cannot change roles")
	status, _, _ = call(t, "GET", base+"/api/v1/users", bobToken, nil)
	require.Equal(t, 403, status)
	status, body, _ = call(t, "GET", base+"/api/v1/users", adminToken, nil)
	require.Equal(t, 200, status)
	var people []any
	for _, u := range body["items"].([]any) {
		// The built-in trainer's service account may be there too.
		if u.(map[string]any)["email"] != account.BuiltinTrainerEmail {
			people = append(people, u)
		}
	}
	require.Len(t, people, 2, "the refused sign-ups made no account")
	status, _, _ = call(t, "GET", base+"/api/v1/me", "ihub_not-a-token", nil)
	require.Equal(t, 401, status)

	// A photo gets proposals from the built-in worker, with no GPU server.
	id := uploadPhoto(t, base, bobToken, "cat.jpg", imagingtest.JPEG(imagingtest.Photo(800, 600, 5)), "cat")
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, img, _ := call(t, "GET", base+"/api/v1/images/"+id, bobToken, nil)
		require.Equal(t, 200, status)
		if img["status"] == "awaiting_review" {
			props := img["proposals"].([]any)
			require.NotEmpty(t, props)
			p := props[0].(map[string]any)
			require.Equal(t, "cat", p["label"], "labelled from the contributor's hint")
			require.Equal(t, "imagehub-segmenter", p["model"].(map[string]any)["name"])
			require.Equal(t, []any{600.0, 800.0}, p["mask"].(map[string]any)["size"])
			break
		}
		require.True(t, time.Now().Before(deadline), "no proposals within a minute: %v\n%s", img, srv.logs)
		time.Sleep(200 * time.Millisecond)
	}

	var last int
	var hdr http.Header
	for range 25 {
		last, _, hdr = call(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"email": "bob@example.com", "password": "wrong password"})
	}
	require.Equal(t, 429, last)
	require.NotEmpty(t, hdr.Get("Retry-After"))

	// Ctrl-C: a graceful stop.
	srv.stop(t, syscall.SIGINT, 30*time.Second)
	require.Contains(t, srv.logs.String(), `"msg":"stopped"`)
}

// stop sends sig and requires serve to exit cleanly (status 0: every part
// stopped within SHUTDOWN_TIMEOUT) before within has passed.
func (s *server) stop(t testing.TB, sig os.Signal, within time.Duration) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(sig))
	select {
	case err := <-s.done:
		require.NoError(t, err, "serve exits cleanly on %v\n%s", sig, s.logs)
	case <-time.After(within):
		t.Fatalf("serve did not stop on %v within %v\n%s", sig, within, s.logs)
	}
}

// setupCode is the one-time setup code serve logged.
func (s *server) setupCode(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(s.logs.String(), "\n") {
		var rec struct {
			Code string `json:"setup_code"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Code != "" {
			return rec.Code
		}
	}
	t.Fatalf("serve logged no setup code\n%s", s.logs)
	return ""
}

func envOf(s *server) map[string]string {
	m := map[string]string{}
	for _, kv := range s.cmd.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || k == "DATA_DIR" {
			m[k] = v
		}
	}
	return m
}

func TestCLI(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": dbtest.NewURL(t)}

	_, errOut, err := runCmd(t, vars, "migrate")
	require.NoError(t, err, errOut)

	// The password comes from standard input, never the command line.
	out, errOut, err := runCmdInput(t, vars, "a long password\n", "users", "create", "--email", "rev@example.com", "--role", "reviewer")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "with role reviewer", "the first account gets the role asked for")
	require.Contains(t, errOut, "no admin yet")

	out, errOut, err = runCmdInput(t, vars, "another long password\r\n", "users", "create", "--email", "root@example.com", "--role", "admin")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "with role admin")
	require.NotContains(t, errOut, "no admin yet")
	app := startServer(t, map[string]string{"DATABASE_URL": vars["DATABASE_URL"], "BUILTIN_WORKER": "false"})
	status, body, _ := call(t, "POST", app.base+"/api/v1/auth/login", "", map[string]string{"email": "root@example.com", "password": "another long password"})
	require.Equal(t, 200, status, "the piped password (without its line end) signs in: %v", body)
	require.Equal(t, "admin", body["user"].(map[string]any)["role"])
	require.NotContains(t, app.logs.String(), "setup_code", "no setup code once there is an admin")

	_, errOut, err = runCmd(t, vars, "users", "create", "--email", "cli@example.com", "--password", "a long password")
	require.Error(t, err)
	require.Contains(t, errOut, "--password: passwords are not taken on the command line")
	_, errOut, err = runCmd(t, vars, "users", "create", "--email", "cli@example.com", "--password=a long password")
	require.Error(t, err)
	require.Contains(t, errOut, "--password: passwords are not taken on the command line")

	_, errOut, err = runCmd(t, vars, "users", "create", "--email", "empty@example.com")
	require.Error(t, err)
	require.Contains(t, errOut, "standard input held no password")

	_, errOut, err = runCmdInput(t, vars, "short\n", "users", "create", "--email", "weak@example.com")
	require.Error(t, err)
	require.Contains(t, errOut, "password: The password must be at least 10 characters")

	_, errOut, err = runCmdInput(t, vars, "a long password\n", "users", "create", "--email", "x@example.com", "--role", "emperor")
	require.Error(t, err)
	require.Contains(t, errOut, "--role")
	pool, err := pgxpool.New(context.Background(), vars["DATABASE_URL"])
	require.NoError(t, err)
	defer pool.Close()
	require.Equal(t, 2, count(t, pool, "SELECT count(*) FROM users WHERE email <> '"+account.BuiltinTrainerEmail+"'"), "refused commands created nobody")

	_, errOut, err = runCmd(t, vars, "tokens", "create", "--email", "nobody@example.com", "--name", "x")
	require.Error(t, err)
	require.Contains(t, errOut, "No account has this email address")

	_, errOut, err = runCmd(t, map[string]string{}, "migrate")
	require.Error(t, err)
	require.Contains(t, errOut, "DATABASE_URL is not set")

	classes := filepath.Join(t.TempDir(), "classes.csv")
	require.NoError(t, os.WriteFile(classes, []byte("LabelName,DisplayName\n/m/0dzct,Human face\n/m/01yrx,Cat\n"), 0o644))
	out, errOut, err = runCmd(t, vars, "labels", "import", classes)
	require.NoError(t, err, errOut)
	require.Contains(t, out, "1 labels added, 1 updated")
	out, errOut, err = runCmd(t, vars, "labels", "import", classes)
	require.NoError(t, err, errOut)
	require.Contains(t, out, "0 labels added, 2 updated", "importing again changes nothing")
	require.NoError(t, os.WriteFile(classes, []byte("/m/0dzct\n"), 0o644))
	_, errOut, err = runCmd(t, vars, "labels", "import", classes)
	require.Error(t, err)
	require.Contains(t, errOut, "line 1")

	_, _, err = runCmd(t, vars, "frobnicate")
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.ExitCode(), "usage errors exit 2")
}
