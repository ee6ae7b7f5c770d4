// Package lint holds tests of the code's own shape, run by make test with the rest.
package lint
