package dev.hybridinference.ledger.internal;

/**
 * A setting of the spend log that cannot be used, named the way the builder and the configuration name it
 * ({@code url}, {@code tablePrefix}, {@code spoolDirectory}...), so that a configuration error can carry the
 * key's path. Internal.
 */
public final class SettingException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final String setting;
    private final String problem;

    /**
     * An error about one setting.
     *
     * @param setting the setting's name
     * @param problem what is wrong and what was expected
     */
    public SettingException(String setting, String problem) {
        super(setting + ": " + problem);
        this.setting = setting;
        this.problem = problem;
    }

    /** The setting's name. */
    public String setting() {
        return setting;
    }

    /** What is wrong, without the setting's name. */
    public String problem() {
        return problem;
    }
}
