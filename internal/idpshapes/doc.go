// Package idpshapes holds the tests that check docs/identity-providers.md:
// every verifier block there accepts tokens shaped as its provider
// documents them, and refuses the near misses. It has no code of its own.
package idpshapes
