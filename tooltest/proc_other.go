//go:build !linux

package tooltest

import "os/exec"

// DieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's; the test's cleanup still stops the server.
func DieWithParent(cmd *exec.Cmd) {}

// lockBuild does nothing here: concurrent test processes may each build a
// tool once, which costs time but is otherwise harmless.
func lockBuild() (unlock func(), err error) { return func() {}, nil }
