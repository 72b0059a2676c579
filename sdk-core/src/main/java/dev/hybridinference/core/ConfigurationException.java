package dev.hybridinference.core;

import dev.hybridinference.core.spi.Secrets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A configuration is wrong: the message names the key path ({@code providers.main.pricing.perHour}) and
 * what was expected there. Raised at load time, before any call is made.
 *
 * <p>The message never carries a secret: it passes through {@link Secrets#redact(String)}, which masks
 * every value the loader registered (API keys, tokens, passwords) and credential patterns, and the user
 * information of any URL ({@code https://user:password@host}) is masked as well. A cause whose message
 * carries a secret is replaced by a redacted copy.
 */
public class ConfigurationException extends RuntimeException {
    /** {@code scheme://userinfo@}: everything between {@code //} and {@code @} in an authority. */
    private static final Pattern URL_USER_INFO =
            Pattern.compile("(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\\s\"']+)@");

    private final String path;

    /**
     * Creates the exception.
     *
     * @param path the offending key path, dot-separated; empty for the document itself
     * @param message what was expected
     */
    public ConfigurationException(String path, String message) {
        // The path and the message are redacted apart: joined, "apiKey: unknown key" would read as a
        // credential field and lose its first word.
        super(path == null || path.isEmpty() ? redact(message) : redact(path) + ": " + redact(message));
        this.path = path == null ? "" : path;
    }

    /**
     * Creates the exception with a cause.
     *
     * @param path the offending key path
     * @param message what was expected
     * @param cause the underlying error; replaced by a redacted copy when its messages carry a secret
     */
    public ConfigurationException(String path, String message, Throwable cause) {
        this(path, message);
        // A password in a URL quoted by the cause is registered first, so that the redacted copy masks
        // it along with the secrets the loader registered.
        for (Throwable t = cause; t != null && t != t.getCause(); t = t.getCause()) {
            registerUrlPasswords(t.getMessage());
        }
        initCause(Secrets.redact(cause));
    }

    /** The offending key path, dot-separated; empty for the document itself. */
    public String path() {
        return path;
    }

    private static void registerUrlPasswords(String text) {
        if (text == null || !text.contains("@")) {
            return;
        }
        Matcher m = URL_USER_INFO.matcher(text);
        while (m.find()) {
            String userInfo = m.group(2);
            Secrets.register(userInfo);
            int colon = userInfo.indexOf(':');
            if (colon >= 0) {
                Secrets.register(userInfo.substring(colon + 1));
            }
        }
    }

    /** {@code text} with registered secrets, credentials and URL user information masked. */
    static String redact(String text) {
        if (text == null) {
            return null;
        }
        return URL_USER_INFO.matcher(Secrets.redact(text)).replaceAll("$1" + Secrets.MASK + "@");
    }
}
