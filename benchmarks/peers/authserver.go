// A token daemon written with Go's standard library only, for bench_authserver.py: the same job
// as okera-authserver (GET /<user>: an RS512 JWT with sub, iat, exp, jti and a kid header,
// written to <dir>/<user>.<nanos>.token with mode 0640 and the group given, the path answered,
// the file deleted after the delete window).
//
//	go build -o authserver-go authserver.go
//	authserver-go -key KEY.pem -directory DIR -gid GID [-port 0] [-delete-after 10s]
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

var userName = regexp.MustCompile(`^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}$`)

func loadKey(file string) *rsa.PrivateKey {
	data, err := os.ReadFile(file)
	if err != nil {
		log.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		log.Fatal("no PEM block in the key file")
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		log.Fatal(err)
	}
	return parsed.(*rsa.PrivateKey)
}

func main() {
	keyFile := flag.String("key", "", "private key (PEM)")
	directory := flag.String("directory", "/tmp/tokens", "token directory")
	gid := flag.Int("gid", os.Getgid(), "group of the token files")
	port := flag.Int("port", 0, "TCP port on 127.0.0.1")
	deleteAfter := flag.Duration("delete-after", 10*time.Second, "delete window")
	flag.Parse()
	key := loadKey(*keyFile)
	key.Precompute()
	publicDer, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := sha256.Sum256(publicDer)
	kid := base64.RawURLEncoding.EncodeToString(sum[:])
	headerJSON, _ := json.Marshal(map[string]string{"alg": "RS512", "typ": "JWT", "kid": kid})
	header := base64.RawURLEncoding.EncodeToString(headerJSON)
	if err := os.MkdirAll(*directory, 0o750); err != nil {
		log.Fatal(err)
	}
	var mutex sync.Mutex
	var lastNanos int64

	http.HandleFunc("/", func(writer http.ResponseWriter, request *http.Request) {
		user := strings.TrimPrefix(request.URL.Path, "/")
		if request.Method != http.MethodGet || !userName.MatchString(user) || strings.Contains(user, "..") {
			http.Error(writer, "bad request", http.StatusBadRequest)
			return
		}
		now := time.Now().Unix()
		random := make([]byte, 16)
		rand.Read(random)
		claims, _ := json.Marshal(map[string]interface{}{
			"sub": user, "iat": now, "exp": now + 86400, "jti": hex.EncodeToString(random)})
		input := header + "." + base64.RawURLEncoding.EncodeToString(claims)
		digest := sha512.Sum512([]byte(input))
		signature, err := rsa.SignPKCS1v15(nil, key, crypto.SHA512, digest[:])
		if err != nil {
			http.Error(writer, "cannot sign", http.StatusInternalServerError)
			return
		}
		token := input + "." + base64.RawURLEncoding.EncodeToString(signature)
		mutex.Lock()
		nanos := time.Now().UnixNano()
		if nanos <= lastNanos {
			nanos = lastNanos + 1
		}
		lastNanos = nanos
		mutex.Unlock()
		file := filepath.Join(*directory, fmt.Sprintf("%s.%d.token", user, nanos))
		handle, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err == nil {
			err = handle.Chown(-1, *gid)
			if err == nil {
				_, err = handle.WriteString(token)
			}
			if closeErr := handle.Close(); err == nil {
				err = closeErr
			}
		}
		if err != nil {
			http.Error(writer, "cannot write the token file", http.StatusInternalServerError)
			return
		}
		time.AfterFunc(*deleteAfter, func() { os.Remove(file) })
		writer.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writer.Write([]byte(file))
	})
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Listening on http://%s\n", listener.Addr())
	log.Fatal(http.Serve(listener, nil))
}
