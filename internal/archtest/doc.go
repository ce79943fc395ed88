// Package archtest holds no code: its test checks that every package of
// the module imports only what docs/architecture.md allows it to, so the
// layout described there cannot drift from the code.
package archtest
