module github.com/agentic-jwt/patchcrew

go 1.26.0

require (
	github.com/gowebpki/jcs v1.0.2
	golang.org/x/text v0.44.0
)

require github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
