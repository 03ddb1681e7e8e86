"""Getting the raw data, one module per concern.

``http``: resumable HTTP downloads, checksums, credentials from the environment; ``archives``: safe
tar/zip extraction; ``amass_tree``: one AMASS tree under HumanML3D's dataset names (plus HumanAct12);
``humanml3d``: HumanML3D's index, captions and splits; ``assets``: published files fetched with gdown.
"""
from motion.data.download.amass_tree import (
                                             HUMANML3D_DATASET_FOLDERS,
                                             bring_humanact12,
                                             build_amass_tree,
                                             copy_dataset_folder,
                                             find_amass_inputs,
                                             find_humanact12,
)
from motion.data.download.archives import (
                                             ARCHIVE_SUFFIXES,
                                             check_archive_opens,
                                             extract_archive,
                                             is_archive,
                                             safe_member_path,
)
from motion.data.download.assets import fetch_asset
from motion.data.download.http import (
                                             AUTH_MODES,
                                             NO_CREDENTIALS,
                                             Credentials,
                                             archive_url,
                                             check_url,
                                             credentials_from_env,
                                             download_file,
                                             redact,
                                             sha256_file,
                                             verify_file,
)
from motion.data.download.humanml3d import SPLITS, prepare_annotations

__all__ = [
    "ARCHIVE_SUFFIXES", "AUTH_MODES", "HUMANML3D_DATASET_FOLDERS", "NO_CREDENTIALS", "SPLITS", "Credentials",
    "archive_url", "bring_humanact12", "build_amass_tree", "check_archive_opens", "check_url", "copy_dataset_folder",
    "credentials_from_env", "download_file", "extract_archive", "fetch_asset", "find_amass_inputs", "find_humanact12",
    "is_archive", "prepare_annotations", "redact", "safe_member_path", "sha256_file", "verify_file",
]
