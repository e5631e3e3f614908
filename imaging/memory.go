package imaging

// layout is what a file's decoded pixels take in memory, per pixel, as far
// as its header tells: what the standard decoder allocates (its working
// copies included), and what Thumbnail allocates to reduce it.
type layout struct {
	decoded float64 // bytes per pixel of the decoded image and the decoder's scratch
	// thumb is bytes per pixel of the copies Thumbnail makes to reach
	// ReviewSize: an RGBA copy unless the image is RGBA or YCbCr, and the
	// reduction's intermediate, which is largest (a 4-byte pixel for each
	// source pixel) for reductions under 2×, where no box comes first.
	thumb float64
}

// memorySlack covers what does not grow with the pixels: the thumbnails,
// the encoders' and decoders' buffers.
const memorySlack = 16 << 20
