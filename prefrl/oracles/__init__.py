"""Teachers that answer preference queries (synthetic ones here; humans elsewhere).

>>> from prefrl.oracles import SyntheticOracle, teacher_config
>>> teacher_config("noisy").beta
1.0
"""

from prefrl.oracles.base import Oracle
from prefrl.oracles.synthetic import TEACHER_PRESETS, SyntheticOracle, TeacherConfig, teacher_config

__all__ = ["Oracle", "SyntheticOracle", "TeacherConfig", "TEACHER_PRESETS", "teacher_config"]
