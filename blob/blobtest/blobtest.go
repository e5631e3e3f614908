// Package blobtest starts a real S3-compatible server for tests: versitygw
// with its posix backend, on a loopback port, over a temporary folder.
//
// versitygw is a tool of the tools module (tools/go.mod, pinned there), so
// the first Start in a fresh build cache builds it (a few minutes on two
// cores) and later ones find it in the go command's cache. A server that
// cannot be built or started fails the test; it is never skipped.
//
// Typical use:
//
//	srv := blobtest.Start(t)
//	store := srv.Open(t) // a blob.Store on a fresh bucket
package blobtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/tooltest"
)

// Region is the region the server runs in.
const Region = "us-east-1"

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:PORT.
	Endpoint  string
	AccessKey string
	SecretKey string

	cmd    *exec.Cmd
	exited chan struct{}
	logs   *tooltest.Tail
}

// Binary returns the path of the versitygw executable (tooltest.Binary).
func Binary() (string, error) { return tooltest.Binary("versitygw") }

// Start starts a server that stops when the test ends. It fails the test,
// never skips it, when the server cannot be built or does not start.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		tb.Fatalf("blobtest: %v", err)
	}
	// The port is picked by listening on port 0 and closing; another
	// process can take it before versitygw does, so try a few.
	for attempt := 1; ; attempt++ {
		s, err := start(tb, bin)
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			tb.Fatalf("blobtest: %v", err)
		}
	}
}

func start(tb testing.TB, bin string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()

	root := tb.TempDir()
	s := &Server{
		Endpoint:  "http://" + addr,
		AccessKey: "test" + randomHex(8),
		SecretKey: randomHex(20),
		exited:    make(chan struct{}),
		logs:      tooltest.NewTail(64 << 10),
	}
	s.cmd = exec.Command(bin,
		"--port", addr,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", Region,
		"--health", "/health",
		"--quiet",
		"posix", root)
	// versitygw reads many settings from VGW_* and ROOT_* variables; a
	// developer's own must not change the test server.
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root, "TMPDIR=" + os.TempDir()}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	tooltest.DieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("error starting versitygw: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	tb.Cleanup(s.Stop)

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := client.Get(s.Endpoint + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("versitygw exited at start: %s", s.logs)
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("versitygw did not answer on %s in 30s (last error: %v): %s", addr, err, s.logs)
		}
	}
}

// Stop stops the server at once. Tests of an unreachable store call it
// early; it is safe to call more than once.
func (s *Server) Stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Client returns an S3 client for the server, for tests that look at the
// bucket behind a store's back.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// NewBucket creates an empty bucket and returns its name.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	bucket := "test-" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		tb.Fatalf("blobtest: error creating bucket: %v", err)
	}
	return bucket
}

// URL returns the blob store URL of a bucket on the server, with its keys
// under prefix (may be "").
func (s *Server) URL(bucket, prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&path_style=true&region=%s", bucket, prefix, s.Endpoint, Region)
}

// Open opens a blob store on a fresh bucket of the server, with its keys
// under the prefix "imagehub/".
func (s *Server) Open(tb testing.TB) blob.Store {
	tb.Helper()
	st, err := blob.Open(context.Background(), s.URL(s.NewBucket(tb), "imagehub"), blob.WithStaticCredentials(s.AccessKey, s.SecretKey))
	if err != nil {
		tb.Fatalf("blobtest: %v", err)
	}
	return st
}

// Env returns environment variables that let a separate imagehub process
// reach the server through the SDK's standard credential chain; its
// BLOB_URL comes from URL.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_REGION=" + Region}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
