// Command imagehub is Deep Images Hub: the web app, its background workers and
// its administrative commands, in one binary.
//
//	imagehub serve                                   web and River workers in one process
//	imagehub migrate                                 apply database migrations
//	imagehub users create --email E --role R          (password from a prompt or stdin)
//	imagehub tokens create --email E --name N
//	imagehub labels import class-descriptions.csv
//	imagehub models register --file model.json [--wait D]
//	imagehub import [--labels-csv F] [--classes-csv F] DIR
//	imagehub import --coco instances.json IMAGES_DIR
//	imagehub import --oi-masks masks.csv [--masks-dir MASKS_DIR] IMAGES_DIR
//	imagehub worker [--addr A] [--capacity N] [--simulate-latency D] …
//	imagehub worker --onnx model.onnx --layout yolo-seg|maskrcnn [--labels F] …
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "imagehub:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `imagehub: Deep Images Hub

Usage:
  imagehub serve                      serve the web app and run background jobs
  imagehub migrate                    apply database migrations and exit
  imagehub users create --email E [--name N] [--role R]
                                      the password is asked for, or read from stdin
  imagehub tokens create --email E --name N [--expires-in-days D]
  imagehub labels import class-descriptions.csv
  imagehub models register --file model.json [--wait D]
                                      register an inference server (JSON as POST /api/v1/models)
  imagehub import [--labels-csv F] [--classes-csv F] [--labels L] [--email E] DIR
  imagehub import --coco instances.json [--as-proposals] [--email E] IMAGES_DIR
  imagehub import --oi-masks masks.csv [--masks-dir MASKS_DIR] [--email E] IMAGES_DIR
  imagehub worker [--addr A] [--model M] [--capacity N] [--simulate-latency D] ...
                                      serve the built-in CPU inference worker (no database)
  imagehub worker --onnx model.onnx --layout yolo-seg|maskrcnn [--labels F] [--threads N] ...
                                      serve an ONNX model on the CPU with ONNX Runtime
  imagehub worker --model-file model.ihrm [--model M] [--version V] ...
                                      serve a model of the project's own CPU trainer
  imagehub trainer --hub URL --token T [--recipes R,...] [--once]
                                      lease training runs from a hub and train them on the CPU
  imagehub download --token T --url BASE DATASET VERSION [--format F] [--split S] [--labels a,b] -o OUT.zip
                                      download a dataset version, resuming after a broken transfer, and verify it

Configuration comes from environment variables; see README.md.
`

// run parses the command line and runs one command. It is separate from main
// so that tests can run the program with their own arguments and environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, getenv, stdout)
	case "users":
		return usersCmd(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	case "tokens":
		return tokensCmd(ctx, args[1:], getenv, stdout, stderr)
	case "labels":
		return labelsCmd(ctx, args[1:], getenv, stdout, stderr)
	case "models":
		return modelsCmd(ctx, args[1:], getenv, stdout, stderr)
	case "import":
		return importCmd(ctx, args[1:], getenv, stdout, stderr)
	case "worker":
		return workerCmd(ctx, args[1:], getenv, stdout, stderr)
	case "trainer":
		return trainerCmd(ctx, args[1:], getenv, stdout, stderr)
	case "download":
		return downloadCmd(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
}
