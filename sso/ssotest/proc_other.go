//go:build !linux

package ssotest

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's; the test's cleanup still stops the provider.
func dieWithParent(cmd *exec.Cmd) {}

// lockBuild does nothing here: concurrent test processes may each build the
// provider once, which costs time but is otherwise harmless.
func lockBuild() (unlock func(), err error) { return func() {}, nil }
