package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/problem"
)

// decodeJSON reads the request body into v, turning every way it can be wrong
// into a refusal that names the problem.
func decodeJSON(c *fiber.Ctx, v any) error {
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	if !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return problem.New(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "",
			"Send a JSON body with Content-Type: application/json.")
	}
	dec := json.NewDecoder(bytes.NewReader(c.BodyRaw()))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return badInput("invalid_json", "", "The request body is empty; send a JSON object.")
		case errors.As(err, &typeErr):
			return badInput("invalid_json", typeErr.Field, fmt.Sprintf("%s must be a %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String())))
		case errors.As(err, &syntaxErr):
			return badInput("invalid_json", "", fmt.Sprintf("The body is not valid JSON (at byte %d).", syntaxErr.Offset))
		default:
			return badInput("invalid_json", "", "The body is not valid JSON: "+err.Error()+".")
		}
	}
	if dec.More() {
		return badInput("invalid_json", "", "The body must hold a single JSON object.")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "list"
	case "map", "struct":
		return "object"
	default:
		return "number"
	}
}
