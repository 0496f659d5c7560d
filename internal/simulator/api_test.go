package simulator

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGatewayChecksInOrder(t *testing.T) {
	tokenAccount := Account{PublicKey: "temp-key", PrivateKey: "temp-secret", SecurityToken: "tok-123"}
	projectAccount := Account{PublicKey: "proj-key", PrivateKey: "proj-secret", Projects: []string{"org-1"}}
	s, _ := startServer(t, Config{Accounts: []Account{testAccount, tokenAccount, projectAccount}})

	withoutBackupID := backupURLParams()
	delete(withoutBackupID, "BackupId")
	withoutRegion := backupURLParams()
	delete(withoutRegion, "Region")
	withProject := func(p string) map[string]string {
		params := backupURLParams()
		params["ProjectId"] = p
		return params
	}
	badSignature := signed(testAccount, backupURLParams())
	badSignature["Signature"] = strings.Repeat("0", 40)
	missingSignature := signed(testAccount, backupURLParams())
	delete(missingSignature, "Signature")
	unknownUser := signed(Account{PublicKey: "nobody", PrivateKey: "x"}, backupURLParams())
	noPublicKey := signed(testAccount, backupURLParams())
	delete(noPublicKey, "PublicKey")
	tokenMissing := signed(Account{PublicKey: "temp-key", PrivateKey: "temp-secret"}, backupURLParams())
	tokenWrong := signed(Account{PublicKey: "temp-key", PrivateKey: "temp-secret", SecurityToken: "tok-999"}, backupURLParams())
	// A bad signature must win over a missing parameter: authentication first.
	badSignatureAndMissingParam := signed(testAccount, withoutBackupID)
	badSignatureAndMissingParam["Signature"] = strings.Repeat("1", 40)

	tests := []struct {
		name        string
		params      map[string]string
		wantCode    int
		wantMessage string
	}{
		{"missing Action", signed(testAccount, map[string]string{"Region": testRegion}), 160, "Missing Action"},
		{"unknown Action", signed(testAccount, map[string]string{"Action": "DeleteEverything"}), 161, "Action [DeleteEverything] not exist"},
		{"missing Signature", missingSignature, 170, ""},
		{"unknown PublicKey", unknownUser, 172, "user not exist"},
		{"missing PublicKey", noPublicKey, 172, "user not exist"},
		{"bad signature", badSignature, 171, "signature error"},
		{"bad signature before missing param", badSignatureAndMissingParam, 171, "signature error"},
		{"token missing", tokenMissing, 174, ""},
		{"token wrong", tokenWrong, 174, ""},
		{"token right", signed(tokenAccount, backupURLParams()), 0, ""},
		{"missing BackupId", signed(testAccount, withoutBackupID), 230, "Missing params: BackupId"},
		{"missing Region", signed(testAccount, withoutRegion), 230, "Missing params: Region"},
		{"project not allowed", signed(projectAccount, withProject("org-2")), 292, ""},
		{"project allowed", signed(projectAccount, withProject("org-1")), 0, ""},
		{"default project", signed(projectAccount, backupURLParams()), 0, ""},
		{"any project without list", signed(testAccount, withProject("org-9")), 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := postForm(t, s, tc.params)
			wantRetCode(t, a, tc.wantCode)
			if tc.wantMessage != "" && a.str("Message") != tc.wantMessage {
				t.Errorf("Message %q, want %q", a.str("Message"), tc.wantMessage)
			}
			if tc.wantCode != 0 && a.str("Message") == "" {
				t.Error("failure without Message")
			}
			if want := tc.params["Action"] + "Response"; a.str("Action") != want {
				t.Errorf("Action %q, want %q", a.str("Action"), want)
			}
		})
	}
}

func TestDescribeBackupURLFailures(t *testing.T) {
	owned := testBackup()
	owned.ID, owned.Owner = "owned-by-other", otherAccount.PublicKey
	pending := testBackup()
	pending.ID, pending.State = "still-running", StateBackuping
	s, _ := startServer(t, Config{Backups: []Backup{testBackup(), owned, pending}})

	with := func(changes map[string]string) map[string]string {
		params := backupURLParams()
		for k, v := range changes {
			if v == "" {
				delete(params, k)
			} else {
				params[k] = v
			}
		}
		return params
	}
	tests := []struct {
		name        string
		params      map[string]string
		wantCode    int
		wantMessage string
	}{
		{"unknown backup", with(map[string]string{"BackupId": "nope"}), 20003, "failed to get info"},
		{"other region", with(map[string]string{"Region": "cn-sh2", "Zone": ""}), 20003, ""},
		{"other zone", with(map[string]string{"Zone": "cn-bj2-05"}), 20003, ""},
		{"other group", with(map[string]string{"GroupId": "zzzzzzzz"}), 20003, ""},
		{"SlaveZone without RegionFlag", with(map[string]string{"SlaveZone": "cn-bj2-05"}), 230, "SlaveZone"},
		{"SlaveZone equal to Zone", with(map[string]string{"SlaveZone": testZone, "RegionFlag": "true"}), 230, "SlaveZone"},
		{"SlaveZone equal to backup zone", with(map[string]string{"Zone": "", "SlaveZone": testZone, "RegionFlag": "true"}), 230, "SlaveZone"},
		{"RegionFlag not a bool", with(map[string]string{"RegionFlag": "yes"}), 230, "RegionFlag"},
		{"other owner", with(map[string]string{"BackupId": "owned-by-other"}), 20004, "insufficient permission"},
		{"not ready", with(map[string]string{"BackupId": "still-running"}), 20206, "backup not ready"},
		{"cross-IDC ok", with(map[string]string{"SlaveZone": "cn-bj2-05", "RegionFlag": "true"}), 0, ""},
		{"cross-region ok", with(map[string]string{"IsCrossRegion": "true"}), 0, ""},
		{"minimal ok", with(map[string]string{"Zone": "", "GroupId": ""}), 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := callAPI(t, s, testAccount, tc.params)
			wantRetCode(t, a, tc.wantCode)
			if !strings.Contains(a.str("Message"), tc.wantMessage) {
				t.Errorf("Message %q does not contain %q", a.str("Message"), tc.wantMessage)
			}
		})
	}
}

func TestDescribeBackupURLSuccess(t *testing.T) {
	s, clock := startServer(t, Config{LinkLifetime: 2 * time.Hour})
	a := callAPI(t, s, testAccount, backupURLParams())
	wantRetCode(t, a, 0)

	if !bytes.Contains(a.raw, []byte(`\u0026Expires=`)) || bytes.Contains(a.raw, []byte("&")) {
		t.Errorf("raw body must escape & as \\u0026: %s", a.raw)
	}
	if ct := a.status; ct != http.StatusOK {
		t.Errorf("status %d", ct)
	}
	path, backupURL, inner := a.str("BackupPath"), a.str("BackupURL"), a.str("InnerBackupPath")
	if backupURL != path+"\n" {
		t.Errorf("BackupURL %q is not BackupPath plus newline", backupURL)
	}
	if !strings.HasPrefix(path, s.URL()+"download/"+testBackupID+"?UCloudPublicKey=") {
		t.Errorf("BackupPath %q has the wrong shape", path)
	}
	if inner != strings.Replace(path, "/download/", "/inner/", 1) {
		t.Errorf("InnerBackupPath %q is not the /inner/ twin of %q", inner, path)
	}
	wantExpires := "Expires=" + strconv.FormatInt(clock.Now().Add(2*time.Hour).Unix(), 10)
	if !strings.Contains(path, wantExpires) {
		t.Errorf("BackupPath %q lacks %s", path, wantExpires)
	}
	if a.str("Action") != "DescribeURedisBackupURLResponse" {
		t.Errorf("Action %q", a.str("Action"))
	}
	if _, ok := a.fields["Message"]; ok {
		t.Error("success carries a Message")
	}
}

func TestRequestEncodings(t *testing.T) {
	s, _ := startServer(t, Config{})

	t.Run("GET query", func(t *testing.T) {
		query := url.Values{}
		for k, v := range signed(testAccount, backupURLParams()) {
			query.Set(k, v)
		}
		resp, err := testClient.Get(s.URL() + "?" + query.Encode())
		if err != nil {
			t.Fatal(err)
		}
		wantRetCode(t, readAnswer(t, resp), 0)
	})
	t.Run("POST JSON with typed values", func(t *testing.T) {
		params := backupURLParams()
		params["RegionFlag"], params["SlaveZone"], params["IsCrossRegion"] = "true", "cn-bj2-05", "false"
		params["Limit"] = "35" // an unused parameter is still signed
		sig := signed(testAccount, params)
		body := map[string]any{}
		for k, v := range sig {
			body[k] = v
		}
		body["RegionFlag"], body["IsCrossRegion"], body["Limit"] = true, false, 35.0
		encoded, _ := json.Marshal(body)
		resp, err := testClient.Post(s.URL(), "application/json", bytes.NewReader(encoded))
		if err != nil {
			t.Fatal(err)
		}
		wantRetCode(t, readAnswer(t, resp), 0)
	})
	t.Run("form with Action only in body", func(t *testing.T) {
		form := url.Values{}
		for k, v := range signed(testAccount, backupURLParams()) {
			form.Set(k, v)
		}
		resp, err := testClient.PostForm(s.URL(), form)
		if err != nil {
			t.Fatal(err)
		}
		wantRetCode(t, readAnswer(t, resp), 0)
	})
	t.Run("conflicting Action in query and body", func(t *testing.T) {
		form := url.Values{}
		for k, v := range signed(testAccount, backupURLParams()) {
			form.Set(k, v)
		}
		resp, err := testClient.PostForm(s.URL()+"?Action=DescribeURedisBackup", form)
		if err != nil {
			t.Fatal(err)
		}
		wantRetCode(t, readAnswer(t, resp), 230)
	})
	t.Run("other paths are not the API", func(t *testing.T) {
		resp, err := testClient.Get(s.URL() + "api")
		if err != nil {
			t.Fatal(err)
		}
		if a := readAnswer(t, resp); a.status != http.StatusNotFound {
			t.Errorf("status %d, want 404", a.status)
		}
	})
}

func TestRetCodeAsString(t *testing.T) {
	s, _ := startServer(t, Config{RetCodeAsString: true})
	a := callAPI(t, s, testAccount, backupURLParams())
	if !bytes.Contains(a.raw, []byte(`"RetCode":"0"`)) {
		t.Errorf("want string RetCode, got %s", a.raw)
	}
	a = callAPI(t, s, testAccount, map[string]string{"Action": "Nope"})
	if !bytes.Contains(a.raw, []byte(`"RetCode":"161"`)) {
		t.Errorf("want string RetCode, got %s", a.raw)
	}
}

func TestBackupMutations(t *testing.T) {
	s, clock := startServer(t, Config{})

	s.SetBackupState(testBackupID, StateBackuping)
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 20206)
	s.SetBackupState(testBackupID, StateSuccess)
	a := callAPI(t, s, testAccount, backupURLParams())
	wantRetCode(t, a, 0)

	s.SetLinkLifetime(5 * time.Minute)
	a = callAPI(t, s, testAccount, backupURLParams())
	if want := "Expires=" + strconv.FormatInt(clock.Now().Add(5*time.Minute).Unix(), 10); !strings.Contains(a.str("BackupPath"), want) {
		t.Errorf("after SetLinkLifetime link %q lacks %s", a.str("BackupPath"), want)
	}

	s.RemoveBackup(testBackupID)
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 20003)
	if status, _ := fetch(t, a.str("BackupPath")); status != http.StatusNotFound {
		t.Errorf("link to a removed backup: status %d, want 404", status)
	}

	s.AddBackup(testBackup())
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 0)
}

// A Server made by New and served by someone else links to the host the
// request was addressed to.
func TestHandlerServedElsewhere(t *testing.T) {
	s := New(Config{Accounts: []Account{testAccount}, Backups: []Backup{testBackup()}})
	defer s.Close()
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	if s.URL() != "" {
		t.Errorf("URL() = %q for an unstarted server", s.URL())
	}

	form := url.Values{}
	for k, v := range signed(testAccount, backupURLParams()) {
		form.Set(k, v)
	}
	resp, err := testClient.PostForm(hs.URL+"/", form)
	if err != nil {
		t.Fatal(err)
	}
	a := readAnswer(t, resp)
	wantRetCode(t, a, 0)
	if !strings.HasPrefix(a.str("BackupPath"), hs.URL+"/download/") {
		t.Errorf("link %q does not point at %s", a.str("BackupPath"), hs.URL)
	}
	if status, body := fetch(t, a.str("BackupPath")); status != http.StatusOK || !bytes.Equal(body, testContent) {
		t.Errorf("download: %d %q", status, body)
	}
}

func TestCallLogRedactsSecrets(t *testing.T) {
	tokenAccount := Account{PublicKey: "temp-key", PrivateKey: "temp-secret", SecurityToken: "tok-123"}
	logged := &logRecorder{}
	s, _ := startServer(t, Config{Accounts: []Account{tokenAccount}, Logf: logged.Logf})

	params := signed(tokenAccount, backupURLParams())
	a := postForm(t, s, params)
	wantRetCode(t, a, 0)
	if status, _ := fetch(t, a.str("BackupPath")); status != http.StatusOK {
		t.Fatalf("download status %d", status)
	}

	calls := s.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls logged, want 1", len(calls))
	}
	c := calls[0]
	if c.Action != "DescribeURedisBackupURL" || c.PublicKey != "temp-key" || c.RetCode != 0 || c.HTTPStatus != 200 || c.Fault != "" {
		t.Errorf("call %+v", c)
	}
	want := maps.Clone(params)
	delete(want, "Signature")
	delete(want, "SecurityToken")
	if !maps.Equal(c.Params, want) {
		t.Errorf("Params %v, want %v", c.Params, want)
	}
	for _, secret := range []string{params["Signature"], "tok-123", "temp-secret", "Signature=", a.str("BackupPath")} {
		if strings.Contains(logged.String(), secret) {
			t.Errorf("log output contains a secret (%d chars)", len(secret))
		}
	}
	if s.CallCount("DescribeURedisBackupURL") != 1 || s.CallCount("") != 1 || s.CallCount("DescribeURedisBackup") != 0 {
		t.Error("CallCount disagrees with the log")
	}
	if s.Downloads() != 1 {
		t.Errorf("Downloads() = %d, want 1", s.Downloads())
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 || s.CallCount("") != 0 || s.Downloads() != 0 {
		t.Error("ResetCalls left something behind")
	}
}

func TestRateLimit(t *testing.T) {
	s, clock := startServer(t, Config{RateLimit: 1, RateBurst: 2})

	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 0)
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 0)
	a := callAPI(t, s, testAccount, backupURLParams())
	wantRetCode(t, a, 153)
	if a.str("Message") != "request throttled" {
		t.Errorf("Message %q", a.str("Message"))
	}
	// Buckets are per account.
	wantRetCode(t, callAPI(t, s, otherAccount, backupURLParams()), 0)
	// Throttled calls take no token; one second of the clock refills one.
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 153)
	clock.Advance(time.Second)
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 0)
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 153)
}
