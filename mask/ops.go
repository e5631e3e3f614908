package mask

import (
	"io"
)

// Area returns the number of set pixels (the sum of the runs of 1s), after
// checking r (see Validate).
func (r RLE) Area() (int, error) {
	rr, err := newRunReader(r)
	if err != nil {
		return 0, err
	}
	area := 0
	for {
		n, err := rr.next()
		if err == io.EOF {
			return area, nil
		}
		if err != nil {
			return 0, err
		}
		if rr.on() {
			area += int(n)
		}
	}
}

// BBox returns the tight box [x, y, w, h] around the set pixels, or
// [0, 0, 0, 0] for an empty mask, from the runs and after checking r (see
// Validate). It equals pycocotools' toBbox for every mask pycocotools or
// Encode writes; toBbox differs only on counts with empty runs of 1s, which
// it counts as a pixel.
func (r RLE) BBox() ([4]int, error) {
	rr, err := newRunReader(r)
	if err != nil {
		return [4]int{}, err
	}
	h := rr.h
	x0, y0, x1, y1 := rr.w, h, int64(-1), int64(-1)
	var pos int64
	for {
		n, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return [4]int{}, err
		}
		if rr.on() && n > 0 {
			first, last := pos, pos+n-1
			fx, lx := first/h, last/h
			x0, x1 = min(x0, fx), max(x1, lx)
			if fx == lx {
				y0, y1 = min(y0, first%h), max(y1, last%h)
			} else {
				// The run goes down to the bottom of one column and on
				// from the top of the next.
				y0, y1 = 0, h-1
			}
		}
		pos += n
	}
	if x1 < 0 {
		return [4]int{}, nil
	}
	return [4]int{int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)}, nil
}

// IoU returns the intersection over union of two masks of the same size,
// walking both strings' runs together without expanding them. Like
// pycocotools it gives 0 when the union is empty: two empty masks are not
// said to agree, which a caller comparing a mask to its edit must handle
// itself (compare the strings).
func IoU(a, b RLE) (float64, error) {
	var inter, union int64
	err := overlap(a, b, func(n int64, inA, inB bool) {
		if inA || inB {
			union += n
			if inA && inB {
				inter += n
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if inter == 0 {
		return 0, nil
	}
	return float64(inter) / float64(union), nil
}

// Union returns the mask of the pixels set in a or in b, which must have the
// same size.
func Union(a, b RLE) (RLE, error) {
	var cw countWriter
	var on bool
	var run int64
	err := overlap(a, b, func(n int64, inA, inB bool) {
		if (inA || inB) != on {
			cw.put(run)
			run, on = 0, !on
		}
		run += n
	})
	if err != nil {
		return RLE{}, err
	}
	cw.put(run)
	return RLE{Size: a.Size, Counts: cw.sb.String()}, nil
}

// overlap walks the runs of a and b together, calling fn for each stretch of
// n pixels over which neither mask changes, with whether it is set in each.
func overlap(a, b RLE, fn func(n int64, inA, inB bool)) error {
	if a.Size != b.Size {
		return invalidf("masks differ in size: %dx%d and %dx%d", a.Size[1], a.Size[0], b.Size[1], b.Size[0])
	}
	ra, err := newRunReader(a)
	if err != nil {
		return err
	}
	rb, err := newRunReader(b)
	if err != nil {
		return err
	}
	var leftA, leftB int64 // pixels left in the current runs
	for done := int64(0); done < ra.total; {
		// Runs may be empty (the first one often is): skip them.
		for leftA == 0 {
			if leftA, err = ra.next(); err != nil {
				return unexpectedEOF(err)
			}
		}
		for leftB == 0 {
			if leftB, err = rb.next(); err != nil {
				return unexpectedEOF(err)
			}
		}
		n := min(leftA, leftB)
		fn(n, ra.on(), rb.on())
		leftA, leftB, done = leftA-n, leftB-n, done+n
	}
	// Read what is left (empty runs, or too many pixels).
	if err := ra.drain(); err != nil {
		return err
	}
	return rb.drain()
}

// unexpectedEOF turns io.EOF, which runReader only gives once the runs add up
// to the mask's size, into an error: the walk still wanted pixels.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return invalidf("mask counts end before the last pixel")
	}
	return err
}

// CrowdIoU returns what the COCO API's iou gives a detection dt against a
// crowd region (a ground truth with iscrowd set): the intersection over the
// detection's own area, so that a detection lying inside a crowd matches it
// fully however large the crowd is. Like IoU it gives 0 when the masks do
// not meet.
func CrowdIoU(dt, crowd RLE) (float64, error) {
	var inter, area int64
	err := overlap(dt, crowd, func(n int64, inDt, inCrowd bool) {
		if inDt {
			area += n
			if inCrowd {
				inter += n
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if inter == 0 {
		return 0, nil
	}
	return float64(inter) / float64(area), nil
}
