// Package turbojpeg binds the few calls of libjpeg-turbo's TurboJPEG API
// (Debian's libturbojpeg0-dev, 2.1) that ingest needs: reading a JPEG's
// header, decoding it to its YCbCr planes at 1/1, 1/2, 1/4 or 1/8 of its
// size (the reduction is done in the DCT domain, so a 12-megapixel photo
// decoded at half size costs a fraction of a full decode), turning or
// mirroring it losslessly (tjTransform), and encoding planes or RGBA pixels.
//
// It builds with cgo only, and not with the nojpegturbo build tag: the
// imaging package then uses the standard library's decoder instead
// (Available says which). Every call makes its own TurboJPEG handle, so the
// functions are safe for concurrent use. TurboJPEG catches libjpeg's errors
// itself (setjmp inside the C library) and returns them; no C error ever
// unwinds through Go.
package turbojpeg
