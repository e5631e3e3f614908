package imaging

// layout is what a file's decoded pixels take in memory, as far as its
// header tells: what the standard decoder allocates (its working copies
// included), and how Thumbnail reduces it.
type layout struct {
	decoded float64 // bytes per pixel of the decoded image and the decoder's scratch
	toRGBA  bool    // Thumbnail converts it to RGBA at full size first
	reduced float64 // bytes per pixel of the images Thumbnail reduces: 4 for RGBA, the planes of YCbCr
	// progressive is a progressive JPEG, whose decoder holds every DCT
	// coefficient until the last scan.
	progressive bool
}

// memorySlack covers what does not grow with the pixels: the thumbnails,
// the encoders' and decoders' buffers.
const memorySlack = 16 << 20

// thumbBytes is what Thumbnail allocates to bring a w×h image of layout l
// to ReviewSize: an RGBA copy when it needs one, the box-filtered image,
// the horizontal pass of the resampling (target width × box height) and
// the result. (The grid thumbnail is made from the review one, and small.)
func (l layout) thumbBytes(w, h int) int64 {
	if w <= ReviewSize && h <= ReviewSize {
		return 0
	}
	tw, th := fit(w, h, ReviewSize)
	var m float64
	if l.toRGBA {
		m += 4 * float64(w) * float64(h)
	}
	bw, bh := w, h
	if k := boxFactor(min(float64(w)/float64(tw), float64(h)/float64(th))); k >= 2 {
		bw, bh = w/k, h/k
		m += l.reduced * float64(bw) * float64(bh)
	}
	m += l.reduced * (float64(tw)*float64(bh) + float64(tw)*float64(th))
	return int64(m)
}
