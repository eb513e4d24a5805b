// An npm package, not Go: this file keeps its node_modules out of the Go
// module's ./... (the go command skips a directory holding another module).
module github.com/clerksync/clerksync/ensure/typescript

go 1.26.0
