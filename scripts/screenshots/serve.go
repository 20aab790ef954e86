// Command serve serves the extension directory on a loopback port for
// scripts/screenshots/run: popup/popup.html gets one extra <script> that
// loads shim.js (a stand-in for the messenger.* APIs) before the popup's own
// scripts; everything else is served as it is. The extension's files are
// not changed. The renderer's own pages (shim.js, and expiry-notice.html with its
// script and style: the expiry notification) are served under
// /__screenshots/ from the -assets directory, next to extension/'s files,
// so that they load extension/lib/ as the extension's pages do.
//
//	go run ./scripts/screenshots/serve.go -root extension -assets scripts/screenshots
//
// It prints its base URL (http://127.0.0.1:PORT/) on stdout, then serves
// until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

const (
	popupPath  = "/popup/popup.html"
	assetsPath = "/__screenshots/"
	shimPath   = assetsPath + "shim.js"
)

func main() {
	root := flag.String("root", "extension", "extension `directory`")
	assets := flag.String("assets", filepath.Join("scripts", "screenshots"), "`directory` of shim.js and expiry-notice.html")
	flag.Parse()

	files := http.FileServer(http.Dir(*root))
	own := http.StripPrefix(assetsPath, http.FileServer(http.Dir(*assets)))
	mux := http.NewServeMux()
	mux.HandleFunc(assetsPath, func(w http.ResponseWriter, r *http.Request) {
		// The pages and their scripts, not this program's source.
		switch path.Ext(r.URL.Path) {
		case ".html", ".js", ".css":
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		own.ServeHTTP(w, r)
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
