package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stickycalls/stickycalls/context/callcontext"
	"github.com/stickycalls/stickycalls/context/keys"
)

// API keys live in one slot, {Pkeys}, so that finding a key by its hash is
// one script.
func (s *Store) keysTag() string          { return "{" + s.prefix + "keys}" }
func (s *Store) keyName(id string) string { return s.keysTag() + ":k:" + esc(id) }

// PutKey implements keys.Store.
func (s *Store) PutKey(ctx context.Context, k keys.Key) error {
	body := k
	body.Revoked, body.LastUsed = time.Time{}, time.Time{}
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	tag := s.keysTag()
	_, err = s.one(ctx, "put key", run{putKeyScript, []string{s.keyName(k.ID), tag + ":h", tag + ":ids"},
		[]any{string(raw), k.Hash, ts(k.Revoked), ts(k.LastUsed)}})
	return err
}

// KeyByHash implements keys.Store.
func (s *Store) KeyByHash(ctx context.Context, hash string) (keys.Key, error) {
	cmd, err := s.one(ctx, "read key", run{keyByHashScript, []string{s.keysTag() + ":h"}, []any{hash}})
	if err != nil {
		return keys.Key{}, err
	}
	m := fields(cmd.Val())
	if len(m) == 0 {
		return keys.Key{}, callcontext.ErrNotFound
	}
	return decodeKey(m)
}

// Keys implements keys.Store.
func (s *Store) Keys(ctx context.Context) ([]keys.Key, error) {
	cmd, err := s.one(ctx, "list keys", run{allKeysScript, []string{s.keysTag() + ":ids"}, nil})
	if err != nil {
		return nil, err
	}
	list, _ := cmd.Val().([]any)
	var all []keys.Key
	for _, v := range list {
		k, err := decodeKey(fields(v))
		if err != nil {
			return nil, err
		}
		all = append(all, k)
	}
	return all, nil
}

func decodeKey(m map[string]string) (keys.Key, error) {
	var k keys.Key
	if err := json.Unmarshal([]byte(m["json"]), &k); err != nil {
		return k, fmt.Errorf("decode key: %w", err)
	}
	var err error
	if k.Revoked, err = parseTS(m["revoked"]); err != nil {
		return k, err
	}
	k.LastUsed, err = parseTS(m["last_used"])
	return k, err
}

// RevokeKey implements keys.Store. a key revoked before stays
// revoked at its first time.
func (s *Store) RevokeKey(ctx context.Context, id string, now time.Time) error {
	return s.keyTime(ctx, id, "revoked", now, true)
}

// TouchKey implements keys.Store.
func (s *Store) TouchKey(ctx context.Context, id string, now time.Time) error {
	return s.keyTime(ctx, id, "last_used", now, false)
}

func (s *Store) keyTime(ctx context.Context, id, field string, t time.Time, keep bool) error {
	flag := ""
	if keep {
		flag = "1"
	}
	cmd, err := s.one(ctx, "update key", run{keyTimeScript, []string{s.keyName(id)}, []any{field, ts(t), flag}})
	if err != nil {
		return err
	}
	if cmd.Val() == int64(0) {
		return callcontext.ErrNotFound
	}
	return nil
}
