//go:build !cgo || nojpegturbo

package turbojpeg

// Available is false: this build has no TurboJPEG (no cgo, or the
// nojpegturbo tag), and none of the package's other functions exist.
const Available = false
