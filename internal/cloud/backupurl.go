package cloud

import (
	"context"
	"fmt"
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
	// Field is the answer's field the link came from: FieldBackupPath, or
	// FieldBackupURL when BackupPath held no usable link.
	Field string
}

// The fields of a DescribeURedisBackupURL answer that may carry the link.
const (
	FieldBackupPath = "BackupPath"
	FieldBackupURL  = "BackupURL"
)

type describeBackupURLResponse struct {
	envelope
	BackupPath      string `json:"BackupPath"`
	BackupURL       string `json:"BackupURL"`
	InnerBackupPath string `json:"InnerBackupPath"`
}

// DescribeBackupURL asks for the download link of a backup. The link is
// BackupPath when that is a usable link; otherwise BackupURL (trimmed: the
// API ends it with a newline). The API's own documented example answers
// with a short token in BackupPath and the link only in BackupURL.
func (c *Client) DescribeBackupURL(ctx context.Context, creds Credentials, req BackupURLRequest) (BackupLink, error) {
	var resp describeBackupURLResponse
	if err := c.call(ctx, creds, ActionDescribeBackupURL, req.params(), &resp); err != nil {
		return BackupLink{}, err
	}
	obtainedAt := c.now().UTC().Truncate(time.Second)

	result := BackupLink{ObtainedAt: obtainedAt, Field: FieldBackupPath}
	link, pathErr := parseLink(resp.BackupPath, obtainedAt, c.defaultLinkLifetime)
	if pathErr != nil {
		var urlErr error
		result.Field = FieldBackupURL
		if link, urlErr = parseLink(resp.BackupURL, obtainedAt, c.defaultLinkLifetime); urlErr != nil {
			return BackupLink{}, &ResponseError{Action: ActionDescribeBackupURL,
				Reason: fmt.Sprintf("neither BackupPath nor BackupURL holds a usable link (BackupPath: %v; BackupURL: %v)", pathErr, urlErr)}
		}
	}
	result.Link = link
	// The internal link is a convenience; a malformed one (the documented
	// example has a short token there too) is dropped rather than failing
	// the whole answer.
	if inner, err := parseLink(resp.InnerBackupPath, obtainedAt, c.defaultLinkLifetime); err == nil {
		result.InnerURL = inner.URL
	}
	return result, nil
}
