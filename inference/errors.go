package inference

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Retryable is a failure that may pass: a timeout, a connection that failed
// or broke, or a 5xx other than 503. Retry with backoff; after repeated ones
// stop sending to the endpoint for a while.
type Retryable struct {
	URL    string
	Status int // 0 when no answer came
	Err    error
}

func (e *Retryable) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("inference %s: retryable: status %d: %v", e.URL, e.Status, e.Err)
	}
	return fmt.Sprintf("inference %s: retryable: %v", e.URL, e.Err)
}

func (e *Retryable) Unwrap() error { return e.Err }

// Busy is a worker that is full (429 or 503): send to another endpoint or
// back off briefly.
type Busy struct {
	URL        string
	Status     int
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
	Message    string
}

func (e *Busy) Error() string {
	return fmt.Sprintf("inference %s: busy: status %d: %s", e.URL, e.Status, e.Message)
}

// Contract is an answer that breaks the protocol or the segmentation
// convention, or a request the server refused with a 4xx: retrying would
// give the same. Message says exactly what is wrong, for the job's record.
type Contract struct {
	URL     string
	Status  int // the HTTP status of the answer
	Message string
}

func (e *Contract) Error() string {
	return fmt.Sprintf("inference %s: contract: %s", e.URL, e.Message)
}

// The kinds Kind returns.
const (
	KindRetryable = "retryable"
	KindBusy      = "busy"
	KindContract  = "contract"
	KindCanceled  = "canceled"
	KindOther     = "other"
)

// Kind names the class of err for metrics and logs: "retryable", "busy",
// "contract", "canceled" (the caller's context was canceled), "other" (a
// bad argument) or "" for nil.
func Kind(err error) string {
	var (
		r *Retryable
		b *Busy
		c *Contract
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &c):
		return KindContract
	case errors.As(err, &b):
		return KindBusy
	case errors.As(err, &r):
		return KindRetryable
	case errors.Is(err, context.Canceled):
		return KindCanceled
	}
	return KindOther
}

func contractf(url string, status int, format string, args ...any) *Contract {
	return &Contract{URL: url, Status: status, Message: fmt.Sprintf(format, args...)}
}
