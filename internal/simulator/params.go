package simulator

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
)

// maxBodyBytes bounds request bodies; real API calls are tiny.
const maxBodyBytes = 1 << 20

// readParams gathers the request parameters from the query string and, for
// POST, from a form or JSON body, the three encodings the gateway accepts.
// The official SDK sends Action in the query and everything in the body, so
// a name may come from both places; that is fine if the values agree.
func readParams(r *http.Request) (map[string]string, *apiError) {
	params, err := parseForm(r.URL.RawQuery)
	if err != nil {
		return map[string]string{}, err
	}
	if r.Method != http.MethodPost {
		return params, nil
	}
	body, readErr := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if readErr != nil {
		return params, invalidRequest("cannot read request body")
	}
	fromBody, err := parseBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		return params, err
	}
	return mergeParams(params, fromBody)
}

func parseBody(contentType string, body []byte) (map[string]string, *apiError) {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	if mediaType == "application/json" {
		return parseJSONParams(body)
	}
	// Form encoding is the default: it is what the official SDK sends.
	return parseForm(string(body))
}

// parseForm decodes x-www-form-urlencoded text. A repeated name keeps its
// first value: the API expresses lists as Name.0, Name.1, never repetition.
func parseForm(encoded string) (map[string]string, *apiError) {
	values, err := url.ParseQuery(encoded)
	if err != nil {
		return map[string]string{}, invalidRequest("cannot parse form encoding")
	}
	params := make(map[string]string, len(values))
	for name, vs := range values {
		params[name] = vs[0]
	}
	return params, nil
}

// parseJSONParams turns a JSON object into the flat string parameters that
// are signed: bools become true/false, numbers base 10 (35.0 -> 35), arrays
// Name.0, Name.1 and nested objects Name.Key, as the SDKs flatten them.
func parseJSONParams(body []byte) (map[string]string, *apiError) {
	var object map[string]any
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.UseNumber()
	if err := decoder.Decode(&object); err != nil || object == nil {
		return map[string]string{}, invalidRequest("request body is not a JSON object")
	}
	params := make(map[string]string, len(object))
	for name, value := range object {
		flattenJSON(name, value, params)
	}
	return params, nil
}

func flattenJSON(name string, value any, out map[string]string) {
	switch v := value.(type) {
	case nil:
		// null is "not sent", hence not signed either.
	case string:
		out[name] = v
	case bool:
		out[name] = strconv.FormatBool(v)
	case json.Number:
		out[name] = formatNumber(v)
	case []any:
		for i, element := range v {
			flattenJSON(name+"."+strconv.Itoa(i), element, out)
		}
	case map[string]any:
		for key, element := range v {
			flattenJSON(name+"."+key, element, out)
		}
	}
}

func formatNumber(n json.Number) string {
	if i, err := n.Int64(); err == nil {
		return strconv.FormatInt(i, 10)
	}
	if f, err := n.Float64(); err == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return n.String()
}

// mergeParams refuses a name given twice with different values: which one
// the client signed would be a guess, and a client doing it has a bug.
func mergeParams(query, body map[string]string) (map[string]string, *apiError) {
	for name, value := range body {
		if previous, ok := query[name]; ok && previous != value {
			return query, invalidParam(name, "given twice with different values")
		}
		query[name] = value
	}
	return query, nil
}
