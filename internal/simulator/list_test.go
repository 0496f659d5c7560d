package simulator

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// listing is the decoded shape of a DescribeURedisBackup answer.
func listIDs(t *testing.T, a answer) ([]string, int) {
	t.Helper()
	wantRetCode(t, a, 0)
	dataSet, ok := a.fields["DataSet"].([]any)
	if !ok {
		t.Fatalf("DataSet is not an array: %s", a.raw)
	}
	var ids []string
	for _, e := range dataSet {
		ids = append(ids, e.(map[string]any)["BackupId"].(string))
	}
	total, _ := a.fields["TotalCount"].(float64)
	return ids, int(total)
}

func listParams(extra map[string]string) map[string]string {
	params := map[string]string{"Action": "DescribeURedisBackup", "Region": testRegion}
	for k, v := range extra {
		params[k] = v
	}
	return params
}

func TestListBackups(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var backups, want []Backup
	for i := 0; i < 25; i++ {
		b := Backup{
			ID: fmt.Sprintf("b-%02d", i), Region: testRegion, Zone: testZone, GroupID: testGroup,
			Name: "n" + strconv.Itoa(i), Content: make([]byte, i),
			Time: start.Add(-time.Duration(i) * time.Hour), // newest first: insertion order is not time order
		}
		if i%5 == 0 {
			b.Type, b.GroupID = "Auto", "otherGrp"
		}
		backups = append(backups, b)
		want = append(want, b)
	}
	backups = append(backups,
		Backup{ID: "elsewhere", Region: "cn-sh2", Zone: "cn-sh2-01", GroupID: testGroup},
		Backup{ID: "private", Region: testRegion, Zone: testZone, GroupID: testGroup, Owner: otherAccount.PublicKey},
	)
	s, _ := startServer(t, Config{Backups: backups})

	t.Run("default page", func(t *testing.T) {
		ids, total := listIDs(t, callAPI(t, s, testAccount, listParams(nil)))
		if total != 25 || len(ids) != 10 || ids[0] != "b-00" || ids[9] != "b-09" {
			t.Errorf("ids %v total %d", ids, total)
		}
	})
	t.Run("last page", func(t *testing.T) {
		ids, total := listIDs(t, callAPI(t, s, testAccount, listParams(map[string]string{"Limit": "10", "Offset": "20"})))
		if total != 25 || fmt.Sprint(ids) != "[b-20 b-21 b-22 b-23 b-24]" {
			t.Errorf("ids %v total %d", ids, total)
		}
	})
	t.Run("beyond the end", func(t *testing.T) {
		a := callAPI(t, s, testAccount, listParams(map[string]string{"Offset": "100"}))
		ids, total := listIDs(t, a)
		if total != 25 || len(ids) != 0 {
			t.Errorf("ids %v total %d", ids, total)
		}
	})
	t.Run("limit capped at 100", func(t *testing.T) {
		ids, _ := listIDs(t, callAPI(t, s, testAccount, listParams(map[string]string{"Limit": "1000"})))
		if len(ids) != 25 {
			t.Errorf("%d ids", len(ids))
		}
	})
	t.Run("group filter", func(t *testing.T) {
		ids, total := listIDs(t, callAPI(t, s, testAccount, listParams(map[string]string{"GroupId": "otherGrp", "Limit": "2"})))
		if total != 5 || fmt.Sprint(ids) != "[b-00 b-05]" {
			t.Errorf("ids %v total %d", ids, total)
		}
	})
	t.Run("backup filter and fields", func(t *testing.T) {
		a := callAPI(t, s, testAccount, listParams(map[string]string{"BackupId": "b-07"}))
		entry := a.fields["DataSet"].([]any)[0].(map[string]any)
		wantEntry := map[string]any{
			"BackupId": "b-07", "BackupName": "n7", "BackupSize": 7.0, "BackupTime": float64(want[7].Time.Unix()),
			"BackupType": "Manual", "State": "Success", "GroupId": testGroup, "Zone": testZone,
		}
		for k, v := range wantEntry {
			if entry[k] != v {
				t.Errorf("%s = %v, want %v", k, entry[k], v)
			}
		}
	})
	t.Run("owner sees private backup", func(t *testing.T) {
		ids, total := listIDs(t, callAPI(t, s, otherAccount, listParams(map[string]string{"BackupId": "private"})))
		if total != 1 || len(ids) != 1 {
			t.Errorf("ids %v total %d", ids, total)
		}
	})
	t.Run("empty result is an empty array", func(t *testing.T) {
		ids, total := listIDs(t, callAPI(t, s, testAccount, listParams(map[string]string{"Region": "cn-gd"})))
		if total != 0 || len(ids) != 0 {
			t.Errorf("ids %v total %d", ids, total)
		}
	})
	t.Run("bad Limit", func(t *testing.T) {
		wantRetCode(t, callAPI(t, s, testAccount, listParams(map[string]string{"Limit": "-1"})), 230)
	})
	t.Run("missing Region", func(t *testing.T) {
		a := callAPI(t, s, testAccount, map[string]string{"Action": "DescribeURedisBackup"})
		wantRetCode(t, a, 230)
		if a.str("Message") != "Missing params: Region" {
			t.Errorf("Message %q", a.str("Message"))
		}
	})
}
