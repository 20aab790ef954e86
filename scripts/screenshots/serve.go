// Command serve serves the extension directory on a loopback port for
// scripts/screenshots/run: popup/popup.html gets one extra <script> that
// loads shim.js (a stand-in for the messenger.* APIs) before the popup's own
// scripts; everything else is served as it is. The extension's files are
// not changed. The files the .xpi build adds from npm (the popup's strength
// estimator, vendor/zxcvbn/*.js: the "xpi" map of <npm>/package.json) are
// served from <npm>/node_modules, as the .xpi holds them.
//
//	go run ./scripts/screenshots/serve.go -root extension -shim scripts/screenshots/shim.js -npm scripts/zxcvbn
//
// It prints its base URL (http://127.0.0.1:PORT/) on stdout, then serves
// until killed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

const (
	popupPath = "/popup/popup.html"
	shimPath  = "/__screenshots/shim.js"
)

func main() {
	root := flag.String("root", "extension", "extension `directory`")
	shim := flag.String("shim", filepath.Join("scripts", "screenshots", "shim.js"), "shim `file`")
	npm := flag.String("npm", filepath.Join("scripts", "zxcvbn"), "the npm package `directory` of the add-on's runtime libraries")
	flag.Parse()

	files := http.FileServer(http.Dir(*root))
	mux := http.NewServeMux()
	mux.HandleFunc(shimPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFile(w, r, *shim)
	})
	mux.HandleFunc(popupPath, func(w http.ResponseWriter, r *http.Request) {
		page, err := os.ReadFile(filepath.Join(*root, filepath.FromSlash(popupPath)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// Before the first <script>: the shim is a classic script, the
		// popup's are modules (deferred), so the shim runs first.
		html := string(page)
		at := strings.Index(html, "<script")
		if at < 0 {
			http.Error(w, "popup.html has no <script>", http.StatusInternalServerError)
			return
		}
		html = html[:at] + `<script src="` + shimPath + `"></script>` + "\n  " + html[at:]
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, html)
	})
	var pkg struct {
		XPI map[string]string `json:"xpi"`
	}
	data, err := os.ReadFile(filepath.Join(*npm, "package.json"))
	if err == nil {
		err = json.Unmarshal(data, &pkg)
	}
	if err != nil {
		log.Fatal(err)
	}
	for inXPI, from := range pkg.XPI {
		file := filepath.Join(*npm, "node_modules", filepath.FromSlash(from))
		if _, err := os.Stat(file); err != nil {
			log.Printf("%s: %v (npm ci --prefix %s): the popup's strength meter will say it cannot estimate", inXPI, err, *npm)
		}
		mux.HandleFunc("/"+inXPI, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			http.ServeFile(w, r, file)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		files.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("http://%s/\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
