"""Unit tests of embedworker.config: defaults, the TOML file, the environment, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from embedworker.config import CONFIG_ENV, ConfigError, Settings, load_settings

DB_URL = "postgresql://embed@localhost:5432/studify"
SOCKET_URL = "postgresql://user@/db?host=/run/dir"


def write_config(tmp_path: Path, body: str, *, with_db: bool = True) -> Path:
    """A config file in ``tmp_path``; by default it names a database."""
    path = tmp_path / "embedworker.toml"
    head = f'database_url = "{DB_URL}"\n' if with_db else ""
    path.write_text(head + body, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    """The message of the ConfigError that loading ``path`` raises."""
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


# --- defaults ---------------------------------------------------------------------------


def test_defaults_are_the_two_studify_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    settings = load_settings()

    assert settings.database_url == DB_URL
    assert set(settings.models) == {"e5_small", "bge_m3"}
    assert set(settings.enabled_models) == {"e5_small", "bge_m3"}

    e5 = settings.models["e5_small"]
    assert e5.dimension == 384
    assert e5.column == "embedding_e5_small"
    assert e5.flag_column == "has_e5_embedding"
    assert e5.task == "passage"
    assert e5.batch_size == 64
    assert e5.protocol == "hfspace"
    assert e5.url.startswith("https://")
    assert e5.api_key is None
    assert e5.enabled is True

    bge = settings.models["bge_m3"]
    assert bge.dimension == 1024
    assert bge.column == "embedding_bge_m3"
    assert bge.flag_column == "has_bge_embedding"
    assert bge.task is None
    assert bge.batch_size == 32
    assert bge.protocol == "hfspace"
    assert bge.enabled is True


def test_general_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    settings = load_settings()

    assert settings.channel == "embedding_queue"
    assert settings.concurrency == 8
    assert settings.batch_size == 32
    assert settings.max_retries == 3
    assert settings.retry_delay_s <= settings.retry_delay_max_s
    assert settings.log_level == "info"


# --- the TOML file ----------------------------------------------------------------------


def test_toml_file_is_read(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
concurrency = 7
batch_size = 16
channel = "other_channel"
log_level = "DEBUG"

[models.bge_m3]
url = "http://127.0.0.1:9000/"
timeout_s = 5
""",
    )
    settings = load_settings(path)

    assert settings.database_url == DB_URL
    assert settings.concurrency == 7
    assert settings.batch_size == 16
    assert settings.channel == "other_channel"
    assert settings.log_level == "debug"
    assert settings.models["bge_m3"].url == "http://127.0.0.1:9000"  # trailing slash dropped
    assert settings.models["bge_m3"].timeout_s == 5.0


def test_path_may_be_a_string(tmp_path: Path) -> None:
    path = write_config(tmp_path, "concurrency = 2\n")
    assert load_settings(str(path)).concurrency == 2


def test_config_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, "concurrency = 11\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    assert CONFIG_ENV == "EMBEDWORKER_CONFIG"

    settings = load_settings()

    assert settings.concurrency == 11
    assert settings.database_url == DB_URL


def test_explicit_path_wins_over_config_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "env.toml"
    env_file.write_text(f'database_url = "{DB_URL}"\nconcurrency = 3\n', encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(env_file))
    path = write_config(tmp_path, "concurrency = 5\n")

    assert load_settings(path).concurrency == 5


def test_config_env_var_naming_a_missing_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_partial_model_table_keeps_other_defaults(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
[models.e5_small]
url = "http://127.0.0.1:8001"
batch_size = 8
""",
    )
    settings = load_settings(path)

    e5 = settings.models["e5_small"]
    assert e5.url == "http://127.0.0.1:8001"
    assert e5.batch_size == 8
    assert e5.dimension == 384
    assert e5.column == "embedding_e5_small"
    assert e5.flag_column == "has_e5_embedding"
    assert e5.task == "passage"
    # The model the file does not mention is untouched.
    assert settings.models["bge_m3"].dimension == 1024
    assert settings.models["bge_m3"].batch_size == 32


def test_a_third_model_can_be_added(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
[models.minilm]
url = "http://127.0.0.1:8003"
dimension = 384
column = "embedding_minilm"
flag_column = "has_minilm_embedding"
""",
    )
    settings = load_settings(path)

    assert set(settings.enabled_models) == {"e5_small", "bge_m3", "minilm"}
    minilm = settings.models["minilm"]
    assert minilm.dimension == 384
    assert minilm.column == "embedding_minilm"
    assert minilm.batch_size == 32  # ModelSettings default, not a Studify model's
    assert minilm.task is None


def test_a_third_model_needs_all_required_keys(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[models.minilm]\nurl = "http://127.0.0.1:8003"\n')
    message = config_error(path)

    assert "models.minilm.dimension" in message
    assert "models.minilm.column" in message
    assert "models.minilm.flag_column" in message
    assert "models.minilm.url" not in message


def test_a_third_model_without_url_names_url(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[models.minilm]\ndimension = 8\ncolumn = "c_minilm"\nflag_column = "f_minilm"\n',
    )
    assert "models.minilm: url (or urls) is required" in config_error(path)


def test_enabled_false_disables_a_model(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[models.bge_m3]\nenabled = false\n")
    settings = load_settings(path)

    assert set(settings.enabled_models) == {"e5_small"}
    assert settings.models["bge_m3"].enabled is False


def test_disabling_every_model_is_an_error(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, "[models.bge_m3]\nenabled = false\n[models.e5_small]\nenabled = false\n"
    )
    assert "at least one model must be enabled" in config_error(path)


def test_unix_socket_database_url_is_kept_as_is(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'database_url = "{SOCKET_URL}"\n', with_db=False)
    assert load_settings(path).database_url == SOCKET_URL


def test_unix_socket_database_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", SOCKET_URL)
    assert load_settings().database_url == SOCKET_URL


# --- the environment --------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, "concurrency = 3\nmax_retries = 9\n")
    monkeypatch.setenv("EMBEDWORKER_CONCURRENCY", "12")

    settings = load_settings(path)

    assert settings.concurrency == 12
    assert settings.max_retries == 9  # not overridden, the file's value stays


def test_nested_environment_variable_overrides_one_model_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(
        tmp_path, '[models.e5_small]\nurl = "http://file.example:1"\nbatch_size = 10\n'
    )
    monkeypatch.setenv("EMBEDWORKER_MODELS__E5_SMALL__URL", "http://env.example:2/")

    settings = load_settings(path)

    e5 = settings.models["e5_small"]
    assert e5.url == "http://env.example:2"
    assert e5.batch_size == 10  # from the file
    assert e5.dimension == 384  # from the defaults
    assert settings.models["bge_m3"].url.startswith("https://")


def test_nested_environment_variable_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    monkeypatch.setenv("EMBEDWORKER_MODELS__BGE_M3__ENABLED", "false")
    monkeypatch.setenv("EMBEDWORKER_MODELS__E5_SMALL__URL", "http://127.0.0.1:7000")

    settings = load_settings()

    assert set(settings.enabled_models) == {"e5_small"}
    assert settings.models["e5_small"].url == "http://127.0.0.1:7000"
    assert settings.models["e5_small"].column == "embedding_e5_small"


def test_database_url_env_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, "")
    monkeypatch.setenv("DATABASE_URL", SOCKET_URL)
    assert load_settings(path).database_url == SOCKET_URL


def test_embedworker_database_url_env_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, "")
    monkeypatch.setenv("EMBEDWORKER_DATABASE_URL", SOCKET_URL)
    assert load_settings(path).database_url == SOCKET_URL


def test_embedworker_database_url_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDWORKER_DATABASE_URL", DB_URL)
    assert load_settings().database_url == DB_URL


def test_embedworker_database_url_wins_over_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://generic@/other_app")
    monkeypatch.setenv("EMBEDWORKER_DATABASE_URL", DB_URL)
    assert load_settings().database_url == DB_URL


def test_invalid_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    monkeypatch.setenv("EMBEDWORKER_CONCURRENCY", "lots")
    with pytest.raises(ConfigError, match=r"^concurrency: "):
        load_settings()


def test_invalid_nested_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    monkeypatch.setenv("EMBEDWORKER_MODELS__E5_SMALL__DIMENSION", "0")
    with pytest.raises(ConfigError, match=r"models\.e5_small\.dimension"):
        load_settings()


# --- invalid values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("concurrency = 0\n", "concurrency"),
        ("concurrency = 257\n", "concurrency"),
        ('concurrency = "many"\n', "concurrency"),
        ("batch_size = 0\n", "batch_size"),
        ("poll_interval_s = 0\n", "poll_interval_s"),
        ("max_retries = 0\n", "max_retries"),
        ('log_level = "loud"\n', "log_level"),
        ('channel = "bad channel"\n', "channel"),
        ("[models.e5_small]\ndimension = 0\n", "models.e5_small.dimension"),
        ('[models.e5_small]\ndimension = "big"\n', "models.e5_small.dimension"),
        ("[models.bge_m3]\nbatch_size = 0\n", "models.bge_m3.batch_size"),
        ('[models.e5_small]\nurl = "ftp://example.com"\n', "models.e5_small.url"),
        ('[models.e5_small]\ncolumn = "x; DROP TABLE posts"\n', "models.e5_small.column"),
        ('[models.e5_small]\nflag_column = "1abc"\n', "models.e5_small.flag_column"),
        ('[models.e5_small]\nprotocol = "grpc"\n', "models.e5_small.protocol"),
        ("[models.e5_small]\ntimeout_s = 0\n", "models.e5_small.timeout_s"),
    ],
)
def test_invalid_value_names_the_key(tmp_path: Path, body: str, key: str) -> None:
    message = config_error(write_config(tmp_path, body))
    assert message.startswith(f"{key}: "), message


def test_unknown_key_is_an_unknown_setting(tmp_path: Path) -> None:
    message = config_error(write_config(tmp_path, "bogus = 1\n"))
    assert message == "bogus: unknown setting"


def test_unknown_model_key_is_an_unknown_setting(tmp_path: Path) -> None:
    message = config_error(write_config(tmp_path, "[models.e5_small]\nbogus = 1\n"))
    assert message == "models.e5_small.bogus: unknown setting"


def test_every_problem_is_reported(tmp_path: Path) -> None:
    message = config_error(write_config(tmp_path, "concurrency = 0\nbogus = 1\n"))
    assert "concurrency: " in message
    assert "bogus: unknown setting" in message


def test_retry_delay_max_smaller_than_retry_delay_is_rejected(tmp_path: Path) -> None:
    body = "retry_delay_s = 10\nretry_delay_max_s = 5\n"
    assert "retry_delay_max_s" in config_error(write_config(tmp_path, body))


def test_missing_database_url(tmp_path: Path) -> None:
    message = config_error(write_config(tmp_path, "concurrency = 2\n", with_db=False))
    assert message.startswith("database_url: required")
    assert "DATABASE_URL" in message


def test_missing_database_url_without_a_file() -> None:
    with pytest.raises(ConfigError, match=r"^database_url: required"):
        load_settings()


def test_empty_database_url_is_rejected(tmp_path: Path) -> None:
    message = config_error(write_config(tmp_path, 'database_url = ""\n', with_db=False))
    assert message.startswith("database_url: ")


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("concurrency = = 3\n", encoding="utf-8")
    message = config_error(path)
    assert "not valid TOML" in message
    assert str(path) in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    message = config_error(path)
    assert "does not exist" in message
    assert str(path) in message


def test_unreadable_path(tmp_path: Path) -> None:
    message = config_error(tmp_path)  # a directory
    assert "cannot be read" in message
    assert str(tmp_path) in message


def test_two_models_sharing_a_column_are_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[models.bge_m3]\ncolumn = "embedding_e5_small"\n')
    message = config_error(path)
    assert "embedding_e5_small" in message
    assert "models.bge_m3" in message
    assert "models.e5_small" in message


def test_a_column_used_as_another_models_flag_is_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[models.bge_m3]\nflag_column = "has_e5_embedding"\n')
    assert "has_e5_embedding" in config_error(path)


def test_a_disabled_model_may_share_a_column(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, '[models.bge_m3]\ncolumn = "embedding_e5_small"\nenabled = false\n'
    )
    assert set(load_settings(path).enabled_models) == {"e5_small"}


# --- secrets ----------------------------------------------------------------------------


def test_api_key_is_secret_and_not_in_repr(tmp_path: Path) -> None:
    secret = "hf_sup3r-s3cret-t0ken"
    path = write_config(tmp_path, f'[models.e5_small]\napi_key = "{secret}"\n')
    settings = load_settings(path)

    api_key = settings.models["e5_small"].api_key
    assert isinstance(api_key, SecretStr)
    assert api_key.get_secret_value() == secret
    assert secret not in repr(settings)
    assert secret not in str(settings)
    assert secret not in repr(settings.models)


def test_api_key_from_environment_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "env-s3cret-t0ken"
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    monkeypatch.setenv("EMBEDWORKER_MODELS__BGE_M3__API_KEY", secret)
    settings = load_settings()

    api_key = settings.models["bge_m3"].api_key
    assert isinstance(api_key, SecretStr)
    assert api_key.get_secret_value() == secret
    assert secret not in repr(settings)


def test_config_error_does_not_echo_the_api_key(tmp_path: Path) -> None:
    secret = "leaky-s3cret-t0ken"
    path = write_config(tmp_path, f'[models.e5_small]\napi_key = "{secret}"\ndimension = 0\n')
    message = config_error(path)
    assert "models.e5_small.dimension" in message
    assert secret not in message


def test_settings_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    settings: Settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.concurrency = 99


def test_a_model_version_defaults_to_1_and_may_be_set(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[models.e5_small]\nversion = "2024-06 fine-tune"\n')
    settings = load_settings(path)

    assert settings.models["e5_small"].version == "2024-06 fine-tune"
    assert settings.models["bge_m3"].version == "1"


def test_an_empty_or_control_character_version_is_refused(tmp_path: Path) -> None:
    assert "models.e5_small.version" in config_error(
        write_config(tmp_path, '[models.e5_small]\nversion = ""\n')
    )
    assert "models.e5_small.version" in config_error(
        write_config(tmp_path, '[models.e5_small]\nversion = "a\\nb"\n')
    )


def test_a_model_name_must_be_plain(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "[models.\"mini lm\"]\nurl = \"http://x:1\"\ndimension = 8\ncolumn = \"c\"\n"
        "flag_column = \"f\"\n",
    )
    assert "models.mini lm: a model's name is 1 to 63 letters" in config_error(path)


def test_the_command_line_offers_every_maintenance_job() -> None:
    from embedworker.cli import MAINTENANCE_JOBS
    from embedworker.schedules import MANUAL_JOBS

    assert sorted(MAINTENANCE_JOBS) == sorted(MANUAL_JOBS)
