/** Routing state shared across a fleet through Redis. */
package dev.hybridinference.redis;
