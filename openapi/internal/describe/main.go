// Command describe prints the assembled OpenAPI description, the document
// GET /api/v1/openapi.json serves, for generators that read one file
// (scripts/gen-apiclient.sh).
package main

import (
	"fmt"
	"os"

	"github.com/deepimageshub/imagehub/openapi"
)

func main() {
	b, err := openapi.JSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, "describe:", err)
		os.Exit(1)
	}
	os.Stdout.Write(b)
}
