// Stand-in for mpegts.js: this binary was built without the npm front-end libraries (a plain
// `go build`). Build with `make` (which runs scripts/web.sh after npm install in web/) to embed
// the real library. Pages check window.estuaryVendorMissing and say so instead of playing.
(window.estuaryVendorMissing = window.estuaryVendorMissing || []).push('mpegts.js');
console.warn('mpegts.js is not in this build of Estuary: build it with make to play this format.');
