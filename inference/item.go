package inference

// Item is one image of a request: its canonical file (upright, as stored
// at ingest), the contributor's labels and what the hub accepts back.
type Item struct {
	Image []byte
	// URL is where a model that fetches the image itself (a Label Studio
	// ML backend) reads it: short-lived and signed for this image alone.
	URL   string
	Hints []string
	Want  Expect
}
