# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The programs of okera.auth; okera_auth.module_utils is the collection's plugins/module_utils."""
