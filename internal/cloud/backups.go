package cloud

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// ActionDescribeBackups lists an instance's backups.
const ActionDescribeBackups = "DescribeURedisBackup"

const (
	// backupsPageSize is the page size asked for; the API's default is 10.
	backupsPageSize = 100
	// maxBackupPages bounds a listing, in case a gateway keeps answering.
	maxBackupPages = 100
)

// ListBackupsRequest holds the parameters of DescribeURedisBackup.
type ListBackupsRequest struct {
	Region    string
	Zone      string
	ProjectID string
	GroupID   string
}

// Backup is one entry of a backup listing.
type Backup struct {
	ID      string
	Name    string
	Type    string // Auto | Manual
	State   string // Backuping | Success | Error | Expired
	GroupID string
	Zone    string
	Size    int64
	Time    time.Time
}

type describeBackupsResponse struct {
	envelope
	TotalCount int `json:"TotalCount"`
	DataSet    []struct {
		BackupID   string `json:"BackupId"`
		BackupName string `json:"BackupName"`
		BackupSize int64  `json:"BackupSize"`
		BackupTime int64  `json:"BackupTime"`
		BackupType string `json:"BackupType"`
		State      string `json:"State"`
		GroupID    string `json:"GroupId"`
		Zone       string `json:"Zone"`
	} `json:"DataSet"`
}

// ListBackups returns every backup matching req, reading all pages.
func (c *Client) ListBackups(ctx context.Context, creds Credentials, req ListBackupsRequest) ([]Backup, error) {
	var backups []Backup
	for page := range maxBackupPages {
		resp, err := c.backupsPage(ctx, creds, req, page*backupsPageSize)
		if err != nil {
			return nil, err
		}
		for _, item := range resp.DataSet {
			backups = append(backups, Backup{
				ID: item.BackupID, Name: item.BackupName, Type: item.BackupType, State: item.State,
				GroupID: item.GroupID, Zone: item.Zone, Size: item.BackupSize, Time: time.Unix(item.BackupTime, 0).UTC(),
			})
		}
		if len(resp.DataSet) == 0 || len(backups) >= resp.TotalCount {
			return backups, nil
		}
	}
	return nil, &ResponseError{Action: ActionDescribeBackups, Reason: fmt.Sprintf("more than %d pages of backups", maxBackupPages)}
}

func (c *Client) backupsPage(ctx context.Context, creds Credentials, req ListBackupsRequest, offset int) (*describeBackupsResponse, error) {
	params := map[string]string{
		"Region":    req.Region,
		"Zone":      req.Zone,
		"ProjectId": req.ProjectID,
		"GroupId":   req.GroupID,
		"Limit":     strconv.Itoa(backupsPageSize),
		"Offset":    strconv.Itoa(offset),
	}
	var resp describeBackupsResponse
	if err := c.call(ctx, creds, ActionDescribeBackups, params, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// ListBackups lists backups; listings are not shared between callers.
func (s *SharedResolver) ListBackups(ctx context.Context, creds Credentials, req ListBackupsRequest) ([]Backup, error) {
	return s.client.ListBackups(ctx, creds, req)
}
