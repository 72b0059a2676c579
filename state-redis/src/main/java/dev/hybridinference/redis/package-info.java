/**
 * Routing state shared across a fleet through Redis: {@link dev.hybridinference.redis.RedisSharedState}, the
 * {@code redis} type of the configuration's {@code state:} section. Budgets, circuit breakers, in-flight slots
 * and keep-warm pings of every instance's composite client then act as one.
 */
package dev.hybridinference.redis;
