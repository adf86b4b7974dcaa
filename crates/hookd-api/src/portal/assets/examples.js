// Signature verification examples shown on the portal's "Verifying signatures" page,
// by language and header. Kept apart so a test can run each against a real delivery
// (crates/hookd/tests/it/portal_examples.rs).

export const EXAMPLES = {
  Python: {
    "Heygen-Signature": `import hashlib, hmac

def verify(body: bytes, headers, secret: str) -> bool:
    # HMAC-SHA256 of the raw body, keyed with the whole whsec_... string, hex.
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["Heygen-Signature"])`,
    "Standard Webhooks": `import base64, hashlib, hmac, time

def verify(body: bytes, headers, secret: str) -> bool:
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(ts)) > 300:
        return False  # too old or from the future: a replay
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{ts}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s.split(",", 1)[1])
               for s in headers["webhook-signature"].split())`,
  },
  Node: {
    "Heygen-Signature": `const crypto = require("node:crypto");

function verify(body /* Buffer */, headers, secret) {
  const expected = crypto.createHmac("sha256", secret).update(body).digest("hex");
  const given = headers["heygen-signature"] || "";
  return given.length === expected.length &&
    crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(given));
}`,
    "Standard Webhooks": `const crypto = require("node:crypto");

function verify(body /* Buffer */, headers, secret) {
  const id = headers["webhook-id"], ts = headers["webhook-timestamp"];
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto.createHmac("sha256", key)
    .update(\`\${id}.\${ts}.\`).update(body).digest("base64");
  return headers["webhook-signature"].split(" ").some((s) => {
    const given = s.split(",")[1] || "";
    return given.length === expected.length &&
      crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(given));
  });
}`,
  },
  Go: {
    "Heygen-Signature": `import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

func Verify(body []byte, h http.Header, secret string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	expected := hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(expected), []byte(h.Get("Heygen-Signature")))
}`,
    "Standard Webhooks": `import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func Verify(body []byte, h http.Header, secret string) bool {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sent, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sent, 0)).Abs() > 5*time.Minute {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	expected := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		if _, sig, ok := strings.Cut(s, ","); ok && hmac.Equal([]byte(sig), []byte(expected)) {
			return true
		}
	}
	return false
}`,
  },
};
