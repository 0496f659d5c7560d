package simulator

import (
	"crypto/sha256"
	"strconv"
	"strings"
	"time"
)

const (
	defaultListLimit = 10
	maxListLimit     = 100
	// expiredLinkAge is how far in the past FaultExpiredLink puts Expires:
	// far enough that no clock-skew allowance makes it look valid.
	expiredLinkAge = time.Hour
)

// describeBackupURL answers DescribeURedisBackupURL.
func (s *Server) describeBackupURL(req *apiRequest) (map[string]any, *apiError) {
	p := req.params
	regionFlag, err := boolParam(p, "RegionFlag")
	if err != nil {
		return nil, err
	}
	if _, err := boolParam(p, "IsCrossRegion"); err != nil {
		return nil, err
	}
	if p["SlaveZone"] != "" && !regionFlag {
		return nil, invalidParam("SlaveZone", "only allowed with RegionFlag=true")
	}
	backup, err := s.lookupBackup(p)
	if err != nil {
		return nil, err
	}
	if err := checkSlaveZone(p, backup); err != nil {
		return nil, err
	}
	if !visibleTo(backup, req.account) {
		return nil, newAPIError(retNoPermission)
	}
	if backup.State != StateSuccess {
		return nil, newAPIError(retBackupNotReady)
	}
	// IsCrossRegion=true asks for the link in the backup's copy region; the
	// simulator has one storage, so it returns the same link.
	return s.linkFields(req, backup.ID), nil
}

// lookupBackup finds the backup the parameters name; every mismatch is the
// same "failed to get info", as the real API does not say which part is off.
func (s *Server) lookupBackup(p map[string]string) (Backup, *apiError) {
	backup, ok := s.findBackup(p["BackupId"])
	switch {
	case !ok,
		backup.Region != p["Region"],
		p["Zone"] != "" && p["Zone"] != backup.Zone,
		p["GroupId"] != "" && p["GroupId"] != backup.GroupID:
		return Backup{}, newAPIError(retFailedToGetInfo)
	}
	return backup, nil
}

// checkSlaveZone: the slave's zone must differ from the instance's zone.
func checkSlaveZone(p map[string]string, backup Backup) *apiError {
	zone := p["Zone"]
	if zone == "" {
		zone = backup.Zone
	}
	if p["SlaveZone"] != "" && p["SlaveZone"] == zone {
		return invalidParam("SlaveZone", "must differ from Zone")
	}
	return nil
}

func visibleTo(b Backup, account Account) bool {
	return b.Owner == "" || b.Owner == account.PublicKey
}

// linkFields builds the success answer, bent by a link fault if one applies.
// BackupURL carries the trailing newline the real API sends.
func (s *Server) linkFields(req *apiRequest, backupID string) map[string]any {
	s.mu.Lock()
	lifetime, documented := s.linkLifetime, s.documented
	s.mu.Unlock()

	l := link{backupID: backupID, expires: expiresAt(req.now.Add(lifetime))}
	switch req.fault.Kind {
	case FaultLinkWithoutExpires:
		l.expires = ""
	case FaultExpiredLink:
		l.expires = expiresAt(req.now.Add(-expiredLinkAge))
	case FaultEmptyLink:
		return map[string]any{}
	}
	download := s.linkURL(req.linkBase, downloadPrefix, l)
	fields := map[string]any{
		"BackupPath":      download,
		"BackupURL":       download + "\n",
		"InnerBackupPath": s.linkURL(req.linkBase, innerPrefix, l),
	}
	switch {
	case req.fault.Kind == FaultOnlyBackupURL:
		fields["BackupPath"] = ""
		delete(fields, "InnerBackupPath")
	case documented:
		// As in the documentation's example: "BackupPath": "KgVuXeBu",
		// "InnerBackupPath": "zeAzhTZt".
		fields["BackupPath"] = shortToken(backupID, "path")
		fields["InnerBackupPath"] = shortToken(backupID, "inner")
	}
	return fields
}

// backupEntry is one element of DescribeURedisBackup's DataSet.
type backupEntry struct {
	BackupID   string `json:"BackupId"`
	BackupName string `json:"BackupName"`
	BackupSize int    `json:"BackupSize"`
	BackupTime int64  `json:"BackupTime"`
	BackupType string `json:"BackupType"`
	State      string `json:"State"`
	GroupID    string `json:"GroupId"`
	GroupName  string `json:"GroupName"`
	Zone       string `json:"Zone"`
}

// describeBackups answers DescribeURedisBackup, the listing. Backups come
// in insertion order, not by time: the real API promises no order either.
func (s *Server) describeBackups(req *apiRequest) (map[string]any, *apiError) {
	limit, err := intParam(req.params, "Limit", defaultListLimit)
	if err != nil {
		return nil, err
	}
	offset, err := intParam(req.params, "Offset", 0)
	if err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)

	matching := s.matchingBackups(req)
	page := matching[min(offset, len(matching)):min(offset+limit, len(matching))]
	dataSet := make([]backupEntry, 0, len(page))
	for _, b := range page {
		dataSet = append(dataSet, entryFor(b))
	}
	return map[string]any{"DataSet": dataSet, "TotalCount": len(matching)}, nil
}

func (s *Server) matchingBackups(req *apiRequest) []Backup {
	p := req.params
	s.mu.Lock()
	defer s.mu.Unlock()
	var matching []Backup
	for _, b := range s.backups {
		if b.Region == p["Region"] && visibleTo(b, req.account) &&
			matchesOptional(p["GroupId"], b.GroupID) && matchesOptional(p["BackupId"], b.ID) {
			matching = append(matching, b)
		}
	}
	return matching
}

func matchesOptional(filter, value string) bool { return filter == "" || filter == value }

func entryFor(b Backup) backupEntry {
	return backupEntry{
		BackupID:   b.ID,
		BackupName: b.Name,
		BackupSize: len(b.Content),
		BackupTime: b.Time.Unix(),
		BackupType: b.Type,
		State:      b.State,
		GroupID:    b.GroupID,
		GroupName:  b.GroupID, // the simulator has no instance names
		Zone:       b.Zone,
	}
}

// boolParam accepts exactly "true" and "false", how the SDKs write booleans.
func boolParam(p map[string]string, name string) (bool, *apiError) {
	switch p[name] {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, invalidParam(name, "must be true or false")
}

func intParam(p map[string]string, name string, fallback int) (int, *apiError) {
	raw, ok := p[name]
	if !ok || raw == "" {
		return fallback, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 {
		return 0, invalidParam(name, "must be a non-negative integer")
	}
	return n, nil
}

// shortToken is an eight-letter token derived from its inputs, shaped like
// the documented example's BackupPath.
func shortToken(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "/")))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	token := make([]byte, 8)
	for i := range token {
		token[i] = letters[int(sum[i])%len(letters)]
	}
	return string(token)
}
