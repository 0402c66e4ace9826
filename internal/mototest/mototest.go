// Package mototest connects wire tests to the moto_server that `make test`
// starts. It is test support only: it reads the environment, which library
// packages never do.
//
// Config skips the test when EC2OPS_MOTO_ENDPOINT is unset, except under
// CI=true where a missing server is a failure. Every test gets a freshly
// reset server (POST /moto-api/reset). Test binaries of different packages
// run in parallel and share the one server, so Config holds an exclusive
// file lock until the test ends: wire tests run one at a time across
// packages, and a reset never wipes another package's test.
package mototest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// EnvEndpoint names the variable holding the moto_server URL.
const EnvEndpoint = "EC2OPS_MOTO_ENDPOINT"

// Region is the Region wire tests use.
const Region = "us-east-1"

// Endpoint returns the moto endpoint, skipping (or, under CI=true, failing)
// the test when none is configured.
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := strings.TrimRight(os.Getenv(EnvEndpoint), "/")
	if ep == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set under CI=true: run the tests with `make test`, which starts moto_server", EnvEndpoint)
		}
		t.Skipf("wire test skipped: %s is not set (run `make test` to start moto_server, or set it to a running moto_server URL)", EnvEndpoint)
	}
	return ep
}

// Config returns an aws.Config for the SDK clients pointed at a freshly reset
// moto_server: region us-east-1, static credentials, one attempt per call
// (moto answers unimplemented operations with HTTP 500, which must not be
// retried). Pass the endpoint to clients with BaseEndpoint (Config sets it).
func Config(t testing.TB) aws.Config {
	t.Helper()
	ep := Endpoint(t)
	unlock := lock(t, ep)
	t.Cleanup(unlock)
	Reset(t, ep)
	return aws.Config{
		Region:           Region,
		Credentials:      credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint:     aws.String(ep),
		RetryMaxAttempts: 1,
	}
}

// Reset wipes moto's state.
func Reset(t testing.TB, ep string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, ep+"/moto-api/reset", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("reset moto_server at %s: %v", ep, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset moto_server at %s: HTTP %d", ep, resp.StatusCode)
	}
}

func lockPath(ep string) string {
	name := strings.NewReplacer(":", "_", "/", "_").Replace(ep)
	return filepath.Join(os.TempDir(), fmt.Sprintf("ec2ops-moto-%s.lock", name))
}
