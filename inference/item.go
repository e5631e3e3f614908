package inference

// Item is one image of a request: its canonical file (upright, as stored
// at ingest), the contributor's labels and what the hub accepts back.
type Item struct {
	Image []byte
	Hints []string
	Want  Expect
}
