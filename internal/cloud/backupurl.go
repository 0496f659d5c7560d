package cloud

import (
	"context"
	"strings"
	"time"
)

// ActionDescribeBackupURL is the call that hands out a backup's download link.
const ActionDescribeBackupURL = "DescribeURedisBackupURL"

// BackupURLRequest holds the parameters of DescribeURedisBackupURL. Empty
// strings and false booleans are not sent: they equal the API's defaults.
type BackupURLRequest struct {
	Region        string
	Zone          string
	ProjectID     string
	BackupID      string
	GroupID       string
	RegionFlag    bool
	SlaveZone     string
	IsCrossRegion bool
}

func (r BackupURLRequest) params() map[string]string {
	return map[string]string{
		"Region":        r.Region,
		"Zone":          r.Zone,
		"ProjectId":     r.ProjectID,
		"BackupId":      r.BackupID,
		"GroupId":       r.GroupID,
		"RegionFlag":    trueOrEmpty(r.RegionFlag),
		"SlaveZone":     r.SlaveZone,
		"IsCrossRegion": trueOrEmpty(r.IsCrossRegion),
	}
}

func trueOrEmpty(b bool) string {
	if b {
		return "true"
	}
	return ""
}

// BackupLink is a resolved download link for a backup.
type BackupLink struct {
	Link
	// InnerURL is the internal-network link, when the provider returned a
	// valid one.
	InnerURL string
	// ObtainedAt is when the answer arrived, in whole seconds.
	ObtainedAt time.Time
}

type describeBackupURLResponse struct {
	envelope
	BackupPath      string `json:"BackupPath"`
	BackupURL       string `json:"BackupURL"`
	InnerBackupPath string `json:"InnerBackupPath"`
}

// DescribeBackupURL asks for the download link of a backup. BackupPath is
// used; BackupURL, its deprecated alias, only when BackupPath is empty.
func (c *Client) DescribeBackupURL(ctx context.Context, creds Credentials, req BackupURLRequest) (BackupLink, error) {
	var resp describeBackupURLResponse
	if err := c.call(ctx, creds, ActionDescribeBackupURL, req.params(), &resp); err != nil {
		return BackupLink{}, err
	}
	obtainedAt := c.now().UTC().Truncate(time.Second)

	raw := resp.BackupPath
	if strings.TrimSpace(raw) == "" {
		raw = resp.BackupURL
	}
	link, err := parseLink(raw, obtainedAt, c.defaultLinkLifetime)
	if err != nil {
		return BackupLink{}, &ResponseError{Action: ActionDescribeBackupURL, Reason: err.Error()}
	}
	result := BackupLink{Link: link, ObtainedAt: obtainedAt}
	// The internal link is a convenience; a malformed one is dropped rather
	// than failing the whole answer.
	if inner, err := parseLink(resp.InnerBackupPath, obtainedAt, c.defaultLinkLifetime); err == nil {
		result.InnerURL = inner.URL
	}
	return result, nil
}
