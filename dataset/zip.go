package dataset

import (
	"archive/zip"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// zipWriter writes a zip that is the same, byte for byte, every time it is
// written from the same entries: every entry carries one fixed time (the
// version's publication), entries come in a fixed order, and compression
// is deterministic. Files that are already compressed (images, PNG masks)
// are stored with their size and CRC in the local header, so that even a
// reader that streams the zip without its central directory can read them;
// text is deflated.
type zipWriter struct {
	zw       *zip.Writer
	out      io.Writer
	modified time.Time
}

func newZipWriter(w io.Writer, modified time.Time) *zipWriter {
	zw := zip.NewWriter(w)
	// The text is mostly RLE strings and hashes, which a harder search
	// hardly shrinks more: the fastest level keeps a large annotations.json
	// from holding up the download.
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	return &zipWriter{zw: zw, out: w, modified: modified.UTC().Truncate(time.Second)}
}

// deflated starts a compressed entry; write its contents to the returned
// writer before starting the next.
func (z *zipWriter) deflated(name string) (io.Writer, error) {
	w, err := z.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: z.modified})
	if err != nil {
		return nil, fmt.Errorf("error starting %s in the zip: %w", name, err)
	}
	return w, nil
}

// stored writes a whole uncompressed entry whose CRC-32 (IEEE) is known.
func (z *zipWriter) stored(name string, data []byte, crc uint32) error {
	fh := &zip.FileHeader{
		Name:               name,
		Method:             zip.Store,
		CreatorVersion:     20, // as CreateHeader writes them
		ReaderVersion:      20,
		CRC32:              crc,
		CompressedSize64:   uint64(len(data)),
		UncompressedSize64: uint64(len(data)),
	}
	// CreateRaw writes the header as given, so the times are ours to set,
	// in the form CreateHeader uses: MS-DOS date and time, and Info-ZIP's
	// extended timestamp.
	fh.ModifiedDate, fh.ModifiedTime = msDosTime(z.modified)
	fh.Extra = extendedTime(z.modified)
	w, err := z.zw.CreateRaw(fh)
	if err != nil {
		return fmt.Errorf("error starting %s in the zip: %w", name, err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("error writing %s to the zip: %w", name, err)
	}
	return nil
}

// flush sends what the zip writer holds to the underlying writer, and on
// to its reader when the writer is a Flusher.
func (z *zipWriter) flush() error {
	if err := z.zw.Flush(); err != nil {
		return fmt.Errorf("error flushing the zip: %w", err)
	}
	if f, ok := z.out.(Flusher); ok {
		if err := f.Flush(); err != nil {
			return fmt.Errorf("error flushing the zip: %w", err)
		}
	}
	return nil
}

// close writes the central directory.
func (z *zipWriter) close() error {
	if err := z.zw.Close(); err != nil {
		return fmt.Errorf("error finishing the zip: %w", err)
	}
	return nil
}

func msDosTime(t time.Time) (date, tm uint16) {
	date = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	tm = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return date, tm
}

func extendedTime(t time.Time) []byte {
	b := make([]byte, 9)
	binary.LittleEndian.PutUint16(b[0:], 0x5455) // extended timestamp
	binary.LittleEndian.PutUint16(b[2:], 5)      // size of what follows
	b[4] = 1                                     // modification time only
	binary.LittleEndian.PutUint32(b[5:], uint32(t.Unix()))
	return b
}
