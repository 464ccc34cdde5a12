package dpop

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisKeyPrefix namespaces the replay entries in a shared redis.
const redisKeyPrefix = "tokengate:dpop:jti:"

// Timeouts of the redis client: a replay-store round trip is on every
// DPoP request, so a slow redis fails the request (503) instead of
// holding it.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 500 * time.Millisecond
)

// RedisStore is a ReplayStore in redis, shared by every replica: a proof
// replayed to another replica finds its entry. Each Remember is one
// SET key 1 NX PX ttl; the key is redisKeyPrefix + base64url(ReplayID).
type RedisStore struct {
	client *redis.Client
}

// NewRedisStore connects lazily to the redis at url
// (redis://[user:password@]host:port/db or rediss:// for TLS). It does not
// dial: an unreachable redis shows up as ErrReplayStoreDown on Remember
// (and on Ping).
func NewRedisStore(url string) (*RedisStore, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: do not echo it.
		return nil, fmt.Errorf("dpop: replay_store: invalid redis URL")
	}
	opt.DialTimeout = redisDialTimeout
	opt.ReadTimeout = redisIOTimeout
	opt.WriteTimeout = redisIOTimeout
	// No command retries: a retried SET NX whose first reply was lost
	// would report the caller's own proof as replayed.
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.ContextTimeoutEnabled = true
	return &RedisStore{client: redis.NewClient(opt)}, nil
}

// Remember implements ReplayStore.
func (s *RedisStore) Remember(ctx context.Context, id ReplayID, ttl time.Duration) error {
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	key := redisKeyPrefix + base64.RawURLEncoding.EncodeToString(id[:])
	fresh, err := s.client.SetNX(ctx, key, 1, ttl).Result()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrReplayStoreDown, err)
	}
	if !fresh {
		return ErrProofReplayed
	}
	return nil
}

// Ping checks that redis answers, for readiness probes.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrReplayStoreDown, err)
	}
	return nil
}

// Close implements ReplayStore.
func (s *RedisStore) Close() error { return s.client.Close() }
